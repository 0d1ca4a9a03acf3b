"""Observation: the Recorder protocol, the frame recorder, and the summary."""

"""The engine: owns simulated time. Imports model, policy Protocols and the Recorder Protocol only."""

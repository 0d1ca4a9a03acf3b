"""Load balancers: which ready replica of a service a new request goes to."""

from dcsim.policies.balancing import (  # noqa: F401  (importing registers them)
    least_outstanding,
    power_of_two,
    prefix_aware,
    random_choice,
    round_robin,
    session_affinity,
    speed_weighted,
)

"""The built-in demo: a simulated leader and three followers, so orders flow out of the box."""

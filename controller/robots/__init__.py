"""The robots: the supervisor that routes orders, one worker per robot (counter, filler),
the notices they give, and the simulators a configuration asks for."""

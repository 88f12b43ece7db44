"""Ways in for BI tools that always read the latest published build: a pool-safe SQLAlchemy
dialect (`duckrec://`) and the pieces `duckrec serve` shares with it."""

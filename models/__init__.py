"""Model cards, fact sets and the tiny model zoo (see models/zoo.py)."""

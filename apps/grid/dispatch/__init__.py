"""Optimal dispatch of batteries and flexible loads (pure engine in `lp.py`)."""

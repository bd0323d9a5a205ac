"""Teleoperation in the target sim: the scripted human-like teleoperator (strategy + hand), its resumable
generator, and browser teleoperation through Meshcat (input sources, session)."""

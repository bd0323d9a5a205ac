"""Clean data: teleoperation in the target sim (human and scripted) and importers of real robot logs."""

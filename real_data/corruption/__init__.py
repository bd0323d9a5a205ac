"""Controlled corruptions of a store's actions (`cotrain corrupt`): the equations (`transforms.py`) and the
resumable generator that writes a corrupt copy of a store (`generate.py`). docs/objectives.md section 16."""

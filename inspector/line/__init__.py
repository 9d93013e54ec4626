"""Talking to the line: a headless station, its PLC handshake, and its outputs.

``handshake.py`` holds the trigger -> busy -> result -> acknowledge semantics, the same
whatever protocol carries them; ``triggered.py`` the sources whose frames come from
triggers; ``station.py`` runs a recipe's pipeline on a source through the one inspection
loop (``services.inspection_loop.run_inspection``) and hands each result to the outputs
(``mqtt.py``, ``opcua.py``), which subscribe to results and never inspect anything
themselves.
"""

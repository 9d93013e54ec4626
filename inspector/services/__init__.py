"""The inspection loop and its writer thread: source -> pipeline -> store."""

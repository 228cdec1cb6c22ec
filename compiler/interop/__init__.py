"""Weights of other libraries' models in fdg's diagrams (``fdg.interop.nequip``)."""

"""The PostgreSQL store: ``[store] url = "postgresql://…"`` shares one database between several gateways.

``plugin`` registers the ``postgresql`` / ``postgres`` schemes (``register_stores``);
``store`` is the ``exoclaw_hooks.Store`` implementation, built from one mixin per
area (``sessions``, ``facts``, ``records``) over ``connection`` (the pools, errors,
time); ``schema`` holds the migrations, applied at start-up under an advisory lock.
"""

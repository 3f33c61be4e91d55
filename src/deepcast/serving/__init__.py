"""Serving: a model store (`store.py`) and a FastAPI service over it (`app.py`).

>>> from deepcast.serving import ModelStore
>>> ModelStore("store").publish("runs/run/model", "demand")
'1'

`deepcast serve --store store` runs the service (FastAPI + uvicorn); the app itself is
`deepcast.serving.app.create_app(store)`.
"""

from deepcast.serving.store import ALIAS, ModelStore, check_name

__all__ = ["ALIAS", "ModelStore", "check_name"]

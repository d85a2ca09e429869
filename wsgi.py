"""WSGI entry point: ``gunicorn -k app.serving.KeepAliveThreadWorker --threads 8 wsgi:app``
(after ``orion db upgrade``; ``orion start`` does both)."""

from app import create_app
from app.serving import freeze_loaded_app

app = create_app()
freeze_loaded_app()

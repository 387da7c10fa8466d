"""The admin web page: a Bottle app on cheroot, served inside the daemon's process.

``create_app(cfg, store=, log=, engine=, controller=None)`` builds the app; ``WebServer(cfg, app)`` serves it
over HTTPS (self-signed certificate in the state directory) or, when configured, plain HTTP.
"""

from .app import create_app
from .server import WebServer

__all__ = ["create_app", "WebServer"]

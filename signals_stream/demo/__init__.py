"""The demo shop served by ``signals-stream dev`` at ``/demo/`` (``site``), its front end bundled
from npm packages (``build``), and the live console at ``/console/`` (``console``)."""

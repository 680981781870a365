"""The plugin API version this gateway implements (a leaf module: ``paygate`` exports it and
``paygate.plugins`` checks plugins against it without importing each other).

1.0 is the API before issue 17 (hooks receive ``settings``); 1.1 adds ``context``, the routing
and observer hooks and scoped refund policies. A plugin declares what it needs as
``paygate_api = ">=1.1,<2"`` (docs/plugins.md, "Versions and compatibility"; CHANGELOG.md).
"""

from __future__ import annotations

PLUGIN_API_VERSION = "1.1"

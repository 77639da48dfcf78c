import json

VALUE = json.dumps({"ok": True})

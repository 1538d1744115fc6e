# stephost Python shim: the component's entry module. Gives the step
# Pipedream's Python surface (`def handler(pd)`) over the stephost:step
# imports; `print` is the step's log, `os.environ` its environment.
import json
import traceback

import stephost_bundle

stephost_bundle.install()  # before anything else: every module importable at run time

import wit_world
from componentize_py_types import Err
from wit_world.imports import auths as _auths
from wit_world.imports import event as _event
from wit_world.imports import flow as _flow
from wit_world.imports import steps as _steps

import urllib.error
import urllib.request


def _urlopen(url, *args, **kwargs):
    raise urllib.error.URLError(
        "urllib cannot connect from a step (the sandbox has no sockets): use `requests` "
        "(`import requests`) or `stephost_http`, which go through the host"
    )


urllib.request.urlopen = _urlopen

import user_step  # the step's own module, imported (and snapshotted) at build time


class _Flow:
    def exit(self, reason=""):
        """As in Pipedream: the workflow ends after this step; the step goes
        on unless it returns (`return pd.flow.exit(reason)`), its return
        value and exports kept."""
        _flow.end("" if reason is None else str(reason))


class Pd:
    """What `handler(pd)` gets: steps, inputs (apps as `{"$auth": …}`), auths,
    export, flow.exit and respond."""

    def __init__(self):
        self.steps = {}
        for name in _steps.names():
            result = _steps.get(name)
            if result is not None:
                self.steps[name] = json.loads(result)
        self.auths = {}
        for app in _auths.apps():
            self.auths[app] = {key: _auths.get(app, key) for key in _auths.keys(app)}
        self.inputs = {app: {"$auth": fields} for app, fields in self.auths.items()}
        if "trigger" not in self.steps:
            self.steps["trigger"] = {"event": json.loads(_event.get())}
        self.flow = _Flow()

    def export(self, name, value):
        _flow.export(str(name), json.dumps(value))

    def respond(self, response):
        status = int(response.get("status", 200))
        headers = [(str(k), str(v)) for k, v in (response.get("headers") or {}).items()]
        body = response.get("body", b"")
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            if not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("content-type", "application/json"))
        if isinstance(body, str):
            body = body.encode()
        _flow.respond(status, headers, bytes(body or b""))


class WitWorld(wit_world.WitWorld):
    def run(self) -> str:
        try:
            # `os.environ` is the run's environment: componentize-py empties
            # it before the snapshot and fills it from the host on the
            # instance's first call (emptying it again here took a
            # Python-level loop ending in a KeyError, a tenth of a run).
            handler = getattr(user_step, "handler", None)
            if not callable(handler):
                raise TypeError("the step must define `def handler(pd):`")
            return json.dumps(handler(Pd()))
        except Err:
            raise
        except BaseException as error:
            # The traceback goes to the step's log; the error itself stays one line.
            traceback.print_exc()
            raise Err(f"{type(error).__name__}: {error}".splitlines()[0])

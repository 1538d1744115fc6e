# The seed's Slack example as a Python step, in Pipedream's `handler(pd)` form.
#
#   stephost build examples/python/slack_post.py
#   stephost run examples/python/slack_post.wasm --account slack --event - <<< '{"text":"hi"}'
#
# `urllib` and `requests` cannot open sockets in the sandbox: HTTP goes through
# `stephost_http` (wasi:http), so through the host's egress proxy, which swaps the
# real token in for the placeholder only on requests to Slack's hosts.
import os

from stephost_http import post


def handler(pd):
    token = pd.inputs["slack"]["$auth"]["oauth_access_token"]
    print(f"token: {token}")
    print(f"slack fields: {', '.join(pd.auths['slack'].keys())}")
    response = post(
        "https://slack.com/api/chat.postMessage",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "channel": os.environ.get("SLACK_CHANNEL", "#general"),
            "text": pd.steps["trigger"]["event"].get("text", "Hello, world!"),
        },
    )
    data = response.json()
    if not data.get("ok"):
        raise RuntimeError(f"Slack said: {data.get('error')}")
    pd.export("ts", data["ts"])
    if pd.steps["trigger"]["event"].get("stop"):
        pd.flow.exit("asked to stop")  # later steps do not run; this one goes on
    return {"ts": data["ts"], "fields": list(pd.auths["slack"].keys())}

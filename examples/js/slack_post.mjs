// The seed's Slack example as a Node.js code step: post a message with the
// connected Slack account. Build and run it:
//
//   stephost build examples/js/slack_post.mjs
//   stephost run examples/js/slack_post.wasm --account slack --event - <<< '{"text":"hi"}'
//
// `auths.slack.oauth_access_token` is a sealed placeholder: the host swaps
// the real token in only on requests to Slack's hosts.
export default async (event, steps, auths) => {
  console.log(`token: ${auths.slack.oauth_access_token}`);
  console.log(`slack fields: ${Object.keys(auths.slack).join(", ")}`);
  const response = await fetch("https://slack.com/api/chat.postMessage", {
    method: "POST",
    headers: {
      Authorization: `Bearer ${auths.slack.oauth_access_token}`,
      "Content-Type": "application/json; charset=utf-8",
    },
    body: JSON.stringify({
      channel: process.env.SLACK_CHANNEL ?? "#general",
      text: event.text ?? "Hello, world!",
    }),
  });
  const data = await response.json();
  if (!data.ok) {
    throw new Error(`Slack said: ${data.error}`);
  }
  return { ts: data.ts, channel: data.channel, fields: Object.keys(auths.slack) };
};

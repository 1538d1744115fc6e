// The same Slack post in Pipedream's current form: an app prop, `this.slack.$auth`,
// `$.export` and `steps.trigger.event`.
//
//   stephost build examples/js/slack_post_component.mjs
export default defineComponent({
  props: {
    slack: { type: "app", app: "slack" },
  },
  async run({ steps, $ }) {
    console.log(`token: ${this.slack.$auth.oauth_access_token}`);
    const response = await fetch("https://slack.com/api/chat.postMessage", {
      method: "POST",
      headers: {
        Authorization: `Bearer ${this.slack.$auth.oauth_access_token}`,
        "Content-Type": "application/json; charset=utf-8",
      },
      body: JSON.stringify({
        channel: "#general",
        text: steps.trigger.event.text ?? "Hello, world!",
      }),
    });
    const data = await response.json();
    $.export("ts", data.ts);
    if (steps.trigger.event.stop) {
      $.flow.exit("asked to stop");
    }
    return data;
  },
});

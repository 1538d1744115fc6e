import { WebClient } from '@slack/web-api'
const web = new WebClient(auths.slack.oauth_access_token)
return await web.chat.postMessage({
  text: "Hello, world!",
  channel: "#general",
})

//! `stephost nodes`: the nodes serving the store, as `GET /v1/nodes`
//! lists them (on a server, or on the local store in this process).

use super::args::NodesArgs;
use super::context::{Storage, service_api};
use super::{output, render};
use anyhow::Result;
use std::process::ExitCode;
use stephost::store::views::NodeList;

pub async fn run(storage: &Storage, args: NodesArgs) -> Result<ExitCode> {
    let listed: NodeList = service_api(storage, &args.server).await?.get_as("/v1/nodes").await?;
    output::emit(args.format.json, &listed, |l| render::nodes(l, stephost::base::clock::now_ms()))?;
    Ok(ExitCode::SUCCESS)
}

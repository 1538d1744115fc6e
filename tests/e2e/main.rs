//! End-to-end tests: real guest components (built once from `examples/`),
//! real loopback servers, real files. One binary, one module per area.

mod accounts;
mod audit;
mod bench;
mod browser;
mod builds;
mod cli;
mod contract;
mod database_cli;
mod deploy;
mod egress;
mod hostile;
mod inspector_api;
mod js_code;
mod languages;
mod loading;
mod nodes;
mod oauth;
mod owner;
mod python_metadata;
mod reflection;
mod refusals;
mod sdk;
mod secrets;
mod server;
mod support;
mod templates;
mod triggers;
mod workflow;

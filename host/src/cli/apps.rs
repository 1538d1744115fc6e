//! `stephost apps list|show`: the app catalog.

use super::args::AppsCommand;
use super::context::catalog;
use super::output;
use super::render::{self, AppView};
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

pub fn run(data_dir: &Path, command: AppsCommand) -> Result<ExitCode> {
    let catalog = catalog(data_dir)?;
    match command {
        AppsCommand::List { format } => {
            let apps: Vec<AppView> = catalog.apps().map(AppView::of).collect();
            output::emit(format.json, &apps, |a| render::app_list(a))?;
        }
        AppsCommand::Show { app, format } => {
            output::emit(format.json, &AppView::of(catalog.require(&app)?), render::app)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

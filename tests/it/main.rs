//! auditpack's integration tests: one binary, one module per topic.

mod common;

mod backup;
mod catalog;
mod cli;
mod collect;
mod commands;
mod config;
mod endpoint;
mod evaluate;
mod judgement_props;
mod layers;
mod m365;
mod manual;
mod package;
mod package_cover;
mod package_props;
mod report;
mod rmm;
mod store;
mod timestamp;

//! auditpack's integration tests: one binary, one module per topic.

mod common;

mod alerts;
mod backup;
mod backup_spec;
mod catalog;
mod cli;
mod collect;
mod commands;
mod config;
mod endpoint;
mod evaluate;
mod fleet;
mod history;
mod incidents;
mod independent_tenant;
mod judgement_props;
mod layers;
mod m365;
mod manual;
mod package;
mod package_conformance;
mod package_cover;
mod package_props;
mod progress;
mod report;
mod rmm;
mod schedule;
mod scope;
mod store;
mod timestamp;
mod trends;

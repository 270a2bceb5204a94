//! Many organisations at once: an MSP's fleet of generated client
//! organisations, each its own Microsoft 365 tenant (by tenant id) and its own
//! part of one shared NinjaOne, Datto RMM and Tactical RMM account (by
//! organization id, site uid and client id), beside the default organisation.
//!
//! Organisations are generated on demand from the fleet's seed and kept in a
//! small cache, so a fleet of hundreds costs the memory of a few: the same
//! seed always gives the same records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::tenant::{tactical_agent_org, OrgNames, Tenant};
use super::{DattoThrottle, SimOptions, SimRateLimits, Simulator};

/// What [`Simulator::start_fleet`] serves.
#[derive(Clone, Debug)]
pub struct FleetSpec {
    /// How many generated organisations.
    pub organisations: usize,
    /// Users per organisation.
    pub users: usize,
    /// Devices per organisation (in Intune, Defender and every RMM).
    pub devices: usize,
    /// Seed of the generated names, ids and failure patterns.
    pub seed: u64,
    /// Added to every response.
    pub latency: Duration,
    /// Limits enforced per tenant and per account.
    pub rate_limits: SimRateLimits,
    /// Datto RMM's account limit (600 / 60 s, then an IP block), if modelled.
    pub datto_throttle: Option<DattoThrottle>,
    /// Largest page served.
    pub max_page_size: usize,
    /// Also serve the demo organisation (Contoso Dental) as the default tenant.
    pub include_demo: bool,
    /// The time relative dates are generated from.
    pub now: DateTime<Utc>,
    /// Generated organisations kept in memory at once.
    pub cache: usize,
}

impl Default for FleetSpec {
    /// Ten organisations of 30 users and 15 devices, no latency, the
    /// documented rate limits, Datto's documented 600 per minute.
    fn default() -> Self {
        FleetSpec {
            organisations: 10,
            users: 30,
            devices: 15,
            seed: 1,
            latency: Duration::ZERO,
            rate_limits: SimRateLimits::documented(),
            datto_throttle: Some(DattoThrottle {
                limit: 600,
                window: Duration::from_secs(60),
                grace: 20,
                block: Duration::from_secs(300),
            }),
            max_page_size: 999,
            include_demo: true,
            now: Utc::now(),
            cache: 32,
        }
    }
}

/// The shared credentials of the MSP's accounts (the simulator's; they open
/// nothing else). Write them to secret files; never into a config.
#[derive(Clone, Debug)]
pub struct FleetAccounts {
    /// The multi-tenant Entra app's client id.
    pub graph_client_id: String,
    /// Its client secret.
    pub graph_secret: String,
    /// NinjaOne API client id.
    pub ninja_client_id: String,
    /// NinjaOne client secret.
    pub ninja_secret: String,
    /// Datto RMM API key.
    pub datto_api_key: String,
    /// Datto RMM API secret.
    pub datto_api_secret: String,
    /// Tactical RMM API key.
    pub tactical_api_key: String,
}

impl FleetAccounts {
    /// The `[sources.*]` tables every organisation of a fleet shares against
    /// the simulator at `base` (named `m365`, `ninja`, `datto`, `tactical`,
    /// secrets read from the files [`FleetOrg::sources_toml`] names); each
    /// organisation adds its own keys ([`FleetOrg::source_keys_toml`]).
    pub fn shared_sources_toml(&self, base: &str) -> String {
        format!(
            r#"[sources.m365]
type = "m365"
client_id = "{graph}"
client_secret_file = "graph.secret"
authority_url = "{base}"
graph_url = "{base}"
defender_url = "{base}"

[sources.ninja]
type = "ninjaone"
base_url = "{base}"
client_id = "{ninja}"
client_secret_file = "ninja.secret"

[sources.datto]
type = "datto-rmm"
base_url = "{base}"
api_key_file = "datto.key"
api_secret_file = "datto.secret"

[sources.tactical]
type = "tactical-rmm"
base_url = "{base}"
api_key_file = "tactical.key"
"#,
            graph = self.graph_client_id,
            ninja = self.ninja_client_id,
        )
    }
}

/// One generated organisation: its names and the ids that map it onto each
/// API, i.e. what a fleet file says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetOrg {
    /// Names and ids.
    pub names: OrgNames,
}

impl FleetOrg {
    /// Display name, e.g. `Organisation 042`.
    pub fn name(&self) -> &str {
        &self.names.name
    }
    /// Entra tenant id (`[sources.m365] tenant_id`).
    pub fn tenant_id(&self) -> &str {
        &self.names.tenant_id
    }
    /// NinjaOne organization id (`[sources.<ninja>] organization_id`).
    pub fn ninja_organization_id(&self) -> i64 {
        self.names.ninja_organization_id
    }
    /// Datto RMM site uid (`[sources.<datto>] site_uid`).
    pub fn datto_site_uid(&self) -> &str {
        &self.names.datto_site_uid
    }
    /// Tactical RMM client id (`[sources.<tactical>] scope`).
    pub fn tactical_client_id(&self) -> i64 {
        self.names.tactical_client_id
    }

    /// The organisation's own keys of each source, as TOML tables to merge
    /// over the fleet's shared `[sources.*]` (named `m365`, `ninja`, `datto`,
    /// `tactical` here).
    pub fn source_keys_toml(&self) -> String {
        format!(
            "[sources.m365]\ntenant_id = \"{}\"\n\n[sources.ninja]\norganization_id = {}\n\n[sources.datto]\nsite_uid = \"{}\"\n\n[sources.tactical]\nscope = \"{}\"\n",
            self.tenant_id(),
            self.ninja_organization_id(),
            self.datto_site_uid(),
            self.tactical_client_id()
        )
    }

    /// A complete `auditpack.toml` `[sources.*]` block for this organisation
    /// against the simulator at `base`: the shared tables
    /// ([`FleetAccounts::shared_sources_toml`]) with this organisation's keys
    /// in each, the shared secrets read from files named `graph.secret`,
    /// `ninja.secret`, `datto.key`, `datto.secret` and `tactical.key` (next
    /// to the config).
    pub fn sources_toml(&self, base: &str, accounts: &FleetAccounts) -> String {
        let own = [
            (
                "[sources.m365]\n",
                format!("tenant_id = \"{}\"\n", self.tenant_id()),
            ),
            (
                "[sources.ninja]\n",
                format!("organization_id = {}\n", self.ninja_organization_id()),
            ),
            (
                "[sources.datto]\n",
                format!("site_uid = \"{}\"\n", self.datto_site_uid()),
            ),
            (
                "[sources.tactical]\n",
                format!("scope = \"{}\"\n", self.tactical_client_id()),
            ),
        ];
        let mut text = accounts.shared_sources_toml(base);
        for (table, keys) in own {
            text = text.replace(table, &format!("{table}{keys}"));
        }
        text
    }
}

/// The generated organisations a simulator serves, and their indexes.
#[derive(Debug, Default)]
pub(crate) struct FleetState {
    orgs: Vec<FleetOrg>,
    users: usize,
    devices: usize,
    now: Option<DateTime<Utc>>,
    capacity: usize,
    by_tenant: HashMap<String, usize>,
    by_ninja: HashMap<i64, usize>,
    by_datto: HashMap<String, usize>,
    by_tactical: HashMap<i64, usize>,
    /// Most recently used first.
    cache: Mutex<Vec<(usize, Arc<Tenant>)>>,
}

impl FleetState {
    fn new(spec: &FleetSpec) -> FleetState {
        let orgs: Vec<FleetOrg> = (0..spec.organisations)
            .map(|i| FleetOrg {
                names: OrgNames::new(i, spec.seed),
            })
            .collect();
        let mut state = FleetState {
            users: spec.users,
            devices: spec.devices,
            now: Some(spec.now),
            capacity: spec.cache.max(1),
            ..FleetState::default()
        };
        for (i, o) in orgs.iter().enumerate() {
            state
                .by_tenant
                .insert(o.names.tenant_id.to_ascii_lowercase(), i);
            state.by_ninja.insert(o.names.ninja_organization_id, i);
            state
                .by_datto
                .insert(o.names.datto_site_uid.to_ascii_lowercase(), i);
            state.by_tactical.insert(o.names.tactical_client_id, i);
        }
        state.orgs = orgs;
        state
    }

    pub(crate) fn len(&self) -> usize {
        self.orgs.len()
    }
    pub(crate) fn by_tenant_id(&self, id: &str) -> Option<usize> {
        self.by_tenant.get(&id.to_ascii_lowercase()).copied()
    }
    pub(crate) fn by_ninja_org(&self, id: i64) -> Option<usize> {
        self.by_ninja.get(&id).copied()
    }
    pub(crate) fn by_datto_site(&self, uid: &str) -> Option<usize> {
        self.by_datto.get(&uid.to_ascii_lowercase()).copied()
    }
    pub(crate) fn by_tactical_client(&self, id: i64) -> Option<usize> {
        self.by_tactical.get(&id).copied()
    }
    pub(crate) fn by_tactical_agent(&self, agent_id: &str) -> Option<usize> {
        tactical_agent_org(agent_id).filter(|i| *i < self.orgs.len())
    }

    /// The records of organisation `i`, generated on first use.
    pub(crate) fn org(&self, i: usize) -> Option<Arc<Tenant>> {
        let names = &self.orgs.get(i)?.names;
        if let Ok(mut cache) = self.cache.lock() {
            if let Some(pos) = cache.iter().position(|(k, _)| *k == i) {
                let hit = cache.remove(pos);
                let t = hit.1.clone();
                cache.insert(0, hit);
                return Some(t);
            }
        }
        let t = Arc::new(Tenant::organisation(
            names,
            self.users,
            self.devices,
            self.now.unwrap_or_else(Utc::now),
        ));
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(0, (i, t.clone()));
            cache.truncate(self.capacity);
        }
        Some(t)
    }
}

impl Simulator {
    /// Serve a fleet: `spec.organisations` generated organisations, each its
    /// own Entra tenant (token endpoint `/{tenant_id}/oauth2/v2.0/token`,
    /// Graph and Defender answering with that tenant's records) and its own
    /// part of one NinjaOne, Datto RMM and Tactical RMM account, plus the demo
    /// organisation as the default tenant when `spec.include_demo`. Every
    /// organisation is distinguishable: users `user17@org042.example`,
    /// devices `ORG042-WS-017`. [`Simulator::fleet`] lists them;
    /// [`Simulator::fleet_accounts`] gives the shared credentials.
    ///
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// When no loopback port can be bound, or the embedded demo is broken.
    pub async fn start_fleet(spec: FleetSpec) -> std::io::Result<Simulator> {
        let mut tenant = if spec.include_demo {
            Tenant::demo(spec.now).map_err(std::io::Error::other)?
        } else {
            Tenant::default()
        };
        tenant.datto.throttle = spec.datto_throttle.clone();
        let options = SimOptions {
            max_page_size: spec.max_page_size,
            latency: spec.latency,
            rate_limits: spec.rate_limits.clone(),
            ..SimOptions::default()
        };
        Simulator::serve(tenant, FleetState::new(&spec), options).await
    }

    /// The generated organisations, in order (empty for [`Simulator::start`]).
    pub fn fleet(&self) -> &[FleetOrg] {
        &self.state.fleet.orgs
    }

    /// The records of generated organisation `index` (as served).
    pub fn fleet_tenant(&self, index: usize) -> Option<Arc<Tenant>> {
        self.state.fleet.org(index)
    }

    /// The credentials of the shared accounts every organisation uses.
    pub fn fleet_accounts(&self) -> FleetAccounts {
        let c = &self.state.options.credentials;
        let t = &self.state.tenant;
        FleetAccounts {
            graph_client_id: c.graph_client_id.clone(),
            graph_secret: c.graph_secret.clone(),
            ninja_client_id: c.ninja_client_id.clone(),
            ninja_secret: c.ninja_secret.clone(),
            datto_api_key: t.datto.api_key.clone(),
            datto_api_secret: t.datto.api_secret.clone(),
            tactical_api_key: t.tactical.api_key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisations_are_distinct_and_regenerate_identically() {
        let spec = FleetSpec {
            organisations: 3,
            users: 5,
            devices: 4,
            cache: 1,
            ..FleetSpec::default()
        };
        let f = FleetState::new(&spec);
        let a = f.org(0).expect("org 0");
        let b = f.org(1).expect("org 1");
        assert_eq!(
            a.graph.users[3]["userPrincipalName"],
            "user3@org001.example"
        );
        assert_eq!(b.ninja.devices[0]["systemName"], "ORG002-WS-001");
        assert_eq!(
            b.datto.devices[0]["siteUid"],
            f.orgs[1].names.datto_site_uid
        );
        // Evicted from the one-entry cache, then generated again the same.
        let again = f.org(0).expect("org 0 again");
        assert!(!Arc::ptr_eq(&a, &again));
        assert_eq!(a.graph.users, again.graph.users);
        assert_eq!(a.tactical.agents, again.tactical.agents);
        let agent = a.tactical.agents[0]["agent_id"].as_str().expect("id");
        assert_eq!(f.by_tactical_agent(agent), Some(0));
        assert_eq!(
            f.by_tenant_id(&f.orgs[2].names.tenant_id.to_uppercase()),
            Some(2)
        );
        assert!(f.org(3).is_none());
    }

    #[test]
    fn an_organisations_sources_parse_and_carry_its_own_keys() {
        let org = FleetOrg {
            names: OrgNames::new(41, 7),
        };
        let accounts = FleetAccounts {
            graph_client_id: "app".into(),
            graph_secret: "s1".into(),
            ninja_client_id: "ninja".into(),
            ninja_secret: "s2".into(),
            datto_api_key: "k".into(),
            datto_api_secret: "s3".into(),
            tactical_api_key: "s4".into(),
        };
        let text = org.sources_toml("http://127.0.0.1:9", &accounts);
        let v: toml::Table = toml::from_str(&text).expect("TOML");
        let s = &v["sources"];
        assert_eq!(s["m365"]["tenant_id"].as_str(), Some(org.tenant_id()));
        assert_eq!(s["ninja"]["organization_id"].as_integer(), Some(1_042));
        assert_eq!(s["datto"]["site_uid"].as_str(), Some(org.datto_site_uid()));
        assert_eq!(s["tactical"]["scope"].as_str(), Some("5042"));
        assert!(
            !text.contains("s1") && !text.contains("s4"),
            "no secret in a config"
        );
        let keys: toml::Table = toml::from_str(&org.source_keys_toml()).expect("TOML");
        assert_eq!(
            keys["sources"]["ninja"]["organization_id"].as_integer(),
            Some(1_042)
        );
        assert_eq!(org.name(), "Organisation 042");
    }
}

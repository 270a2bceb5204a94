//! The records a simulated organisation serves: the built-in demo (from
//! `collectors/demo/`, embedded in the binary) or a synthetic one of any size.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use include_dir::{include_dir, Dir};
use serde_json::{json, Value};

use super::{GraphTenant, NinjaTenant};

static DEMO: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/collectors/demo");

/// Every record the simulator serves, per API, in real API shapes.
#[derive(Clone, Debug, Default)]
pub struct Tenant {
    /// Microsoft Graph.
    pub graph: GraphTenant,
    /// NinjaOne.
    pub ninja: NinjaTenant,
    /// Datto RMM.
    pub datto: super::DattoTenant,
    /// Tactical RMM.
    pub tactical: super::TacticalTenant,
}

impl Tenant {
    /// The demo organisation, with relative times resolved against `now`.
    ///
    /// # Errors
    /// When an embedded file is missing or not a JSON array (a build defect).
    pub fn demo(now: DateTime<Utc>) -> Result<Tenant, String> {
        let load = |name: &str| -> Result<Vec<Value>, String> {
            let file = DEMO
                .get_file(name)
                .ok_or_else(|| format!("demo file {name} is missing"))?;
            let mut value: Value = serde_json::from_slice(file.contents())
                .map_err(|e| format!("demo file {name}: {e}"))?;
            resolve_times(&mut value, now);
            match value {
                Value::Array(items) => Ok(items),
                _ => Err(format!("demo file {name} is not an array")),
            }
        };
        let mut tenant = Tenant {
            graph: GraphTenant {
                users: load("m365-users.json")?,
                registrations: load("m365-userRegistrationDetails.json")?,
            },
            ninja: NinjaTenant {
                devices: load("ninjaone-devices.json")?,
                os_patches: load("ninjaone-os-patches.json")?,
                os_patch_installs: load("ninjaone-os-patch-installs.json")?,
                antivirus_status: load("ninjaone-antivirus-status.json")?,
            },
            ..Tenant::default()
        };
        tenant
            .ninja
            .devices
            .sort_by_key(|d| d.get("id").and_then(Value::as_i64));
        Ok(tenant)
    }

    /// A synthetic organisation: `users` users (every 10th without MFA, every
    /// 25th disabled, every 50th a guest) and `devices` devices (every 7th with
    /// an old critical patch pending).
    pub fn synthetic(users: usize, devices: usize, now: DateTime<Utc>) -> Tenant {
        let at =
            |days: i64| (now - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut t = Tenant::default();
        for i in 0..users {
            let id = format!("00000000-0000-4000-8000-{i:012x}");
            let upn = format!("user{i}@synthetic.example");
            let guest = i % 50 == 49;
            let mfa = i % 10 != 9;
            t.graph.users.push(json!({
                "id": id, "userPrincipalName": upn, "displayName": format!("User {i}"),
                "accountEnabled": i % 25 != 24, "userType": if guest { "Guest" } else { "Member" },
                "createdDateTime": at(400),
                "signInActivity": { "lastSignInDateTime": at((i % 120) as i64), "lastSuccessfulSignInDateTime": at((i % 120) as i64) }
            }));
            t.graph.registrations.push(json!({
                "id": id, "userPrincipalName": upn, "userDisplayName": format!("User {i}"),
                "userType": if guest { "guest" } else { "member" }, "isAdmin": i % 500 == 0,
                "isMfaRegistered": mfa, "isMfaCapable": mfa, "isPasswordlessCapable": false,
                "isSsprRegistered": mfa, "isSsprEnabled": true, "isSsprCapable": mfa,
                "isSystemPreferredAuthenticationMethodEnabled": true,
                "methodsRegistered": if mfa { json!(["microsoftAuthenticatorPush"]) } else { json!([]) },
                "systemPreferredAuthenticationMethods": [], "userPreferredMethodForSecondaryAuthentication": if mfa { "push" } else { "none" },
                "lastUpdatedDateTime": at(1)
            }));
        }
        for i in 0..devices {
            let id = i as i64 + 1;
            let epoch = |days: i64| (now - Duration::days(days)).timestamp();
            t.ninja.devices.push(json!({
                "id": id, "uid": format!("dev-{id}"), "organizationId": 1, "nodeClass": "WINDOWS_WORKSTATION",
                "offline": false, "systemName": format!("HOST-{id:05}"), "dnsName": format!("host-{id:05}.synthetic.example"),
                "lastContact": epoch(0)
            }));
            if i % 7 == 0 {
                t.ninja.os_patches.push(json!({
                    "id": format!("p-{id}"), "name": "Cumulative Update", "severity": "CRITICAL", "status": "APPROVED",
                    "type": "PATCH_MANAGEMENT", "kbNumber": "KB5000001", "deviceId": id, "timestamp": epoch(45)
                }));
            }
        }
        t
    }
}

/// Replace `"@now-45d"` (RFC 3339) and `"@epoch:now-45d"` (epoch seconds) markers.
fn resolve_times(value: &mut Value, now: DateTime<Utc>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| resolve_times(v, now)),
        Value::Object(map) => map.values_mut().for_each(|v| resolve_times(v, now)),
        Value::String(s) => {
            let (epoch, rest) = match s.strip_prefix("@epoch:") {
                Some(rest) => (true, rest),
                None => (false, s.strip_prefix('@').unwrap_or("")),
            };
            if let Some(t) = rest
                .strip_prefix("now")
                .and_then(|offset| shift(now, offset))
            {
                *value = if epoch {
                    json!(t.timestamp())
                } else {
                    json!(t.to_rfc3339_opts(SecondsFormat::Secs, true))
                };
            }
        }
        _ => {}
    }
}

fn shift(now: DateTime<Utc>, offset: &str) -> Option<DateTime<Utc>> {
    if offset.is_empty() {
        return Some(now);
    }
    let (sign, rest) = match offset.as_bytes().first()? {
        b'-' => (-1, &offset[1..]),
        b'+' => (1, &offset[1..]),
        _ => return None,
    };
    let unit = rest.chars().last()?;
    let n: i64 = rest[..rest.len() - 1].parse().ok()?;
    let d = match unit {
        'd' => Duration::days(n),
        'h' => Duration::hours(n),
        'm' => Duration::minutes(n),
        _ => return None,
    };
    Some(now + d * sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_loads_with_times_resolved() {
        let now = Utc::now();
        let t = Tenant::demo(now).expect("demo data is valid");
        assert!(t.graph.users.len() >= 20 && t.ninja.devices.len() >= 10);
        let text = serde_json::to_string(&t.graph.users).expect("json");
        assert!(!text.contains("@now"));
        assert!(t.ninja.devices[0]["lastContact"].is_i64());
    }

    #[test]
    fn markers() {
        let now = DateTime::parse_from_rfc3339("2026-01-31T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let mut v = json!(["@now-30d", "@epoch:now", "@nope", "plain"]);
        resolve_times(&mut v, now);
        assert_eq!(
            v,
            json!(["2026-01-01T00:00:00Z", now.timestamp(), "@nope", "plain"])
        );
    }
}

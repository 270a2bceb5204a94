//! `access_review_completed`: every kind of account the controls need
//! reviewed (member accounts, guest accounts, privileged role assignments) is
//! covered by an access review that completed within `access_review_days`
//! (PCI DSS 7.2.4: every six months).
//!
//! **What it tests.** Whether each kind of account the controls need
//! reviewed is covered by an access review completed within the period:
//! member accounts and guest accounts when the directory has enabled
//! accounts of that kind, and privileged role assignments always (every
//! tenant has a Global Administrator). A kind passes when a review whose
//! scope covers it has an instance completed within the period; it fails when
//! none has (no review at all, only reviews of other kinds, or covering
//! reviews whose last completion is too old or that never completed), naming
//! the reviews in place; it is unproven when a review whose scope cannot be
//! read completed within the period, since that review may be the one that
//! covers it. A guest-only review never proves that member accounts or admin
//! roles were reviewed.
//!
//! What a review covers is read from its scope: the Graph queries of the
//! definition's `scope` and `instanceEnumerationScope` (principal and
//! resource scopes included). A query on directory roles
//! (`/roleManagement/...`, role definitions, role assignment or eligibility
//! schedules) makes the review one of privileged role assignments only;
//! otherwise a query filtered on `userType eq 'Guest'` covers guests, one
//! filtered on `userType eq 'Member'` members, and an unfiltered query on
//! users or members (`/users`, `./members`, `/groups/{id}/transitiveMembers`,
//! `appRoleAssignedTo`, access package assignments) both; a query that
//! reaches no account (the groups an `instanceEnumerationScope` enumerates)
//! adds nothing, and a review none of whose queries is recognised has a
//! scope that cannot be read. Which groups, applications and roles a review
//! covers is not judged (Entra ID reviews are always per resource): the review
//! plan and its sign-off are supplied documents. A retired review that
//! stopped completing does not fail the check while another recent review
//! covers the same kind.
//!
//! **Why it matters.** Access accumulates as people change jobs; a periodic
//! review by the people who know is the control that takes it away again.
//! Reviewing guests alone leaves the workforce and its admin rights
//! unreviewed, while PCI DSS 7.2.4 asks for every user account and its
//! privileges, and HIPAA 164.308(a)(4)(ii)(C) for every user's right of
//! access.
//!
//! **Evidence.** Entra ID access review definitions (their scope queries) and
//! instances, and `users` (which kinds of account are enabled).
//!
//! **How to fix.** Create recurring access reviews with a period shorter
//! than the limit for each failing kind: groups and applications for member
//! accounts, guests for guest accounts, Entra ID roles (Privileged Identity
//! Management) for privileged role assignments; make sure reviewers finish
//! them. For an unproven kind, check the listed review's scope in the Entra
//! admin centre.

use super::guest_accounts_reviewed::{completed, recent};
use super::{days_between, Check, CheckInput, Outcome, Subject, Threshold};
use crate::facts::{AccessReview, FactKind, UserType};

pub(super) const CHECK: Check = Check {
    id: "access_review_completed",
    source: include_str!("access_review_completed.rs"),
    title: "Member, guest and privileged access covered by a recent access review",
    thresholds: &[Threshold::AccessReviewDays],
    remediation: "Create recurring access reviews covering member accounts, guest accounts and privileged roles, with a period shorter than the limit, and make sure reviewers complete them.",
    needs: &[FactKind::Users, FactKind::AccessReviews],
    per_subject: &[],
    run,
};

/// A kind of account the controls need reviewed: the check's subjects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Members,
    Guests,
    Privileged,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Members, Kind::Guests, Kind::Privileged];

    fn id(self) -> &'static str {
        match self {
            Kind::Members => "access-reviews:members",
            Kind::Guests => "access-reviews:guests",
            Kind::Privileged => "access-reviews:privileged-roles",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Members => "member accounts",
            Kind::Guests => "guest accounts",
            Kind::Privileged => "privileged role assignments",
        }
    }
}

/// The kinds of account a review's scope reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Reach {
    members: bool,
    guests: bool,
    privileged: bool,
}

impl Reach {
    const PRIVILEGED: Reach = Reach {
        members: false,
        guests: false,
        privileged: true,
    };

    fn union(self, other: Reach) -> Reach {
        Reach {
            members: self.members || other.members,
            guests: self.guests || other.guests,
            privileged: self.privileged || other.privileged,
        }
    }

    fn covers(self, kind: Kind) -> bool {
        match kind {
            Kind::Members => self.members,
            Kind::Guests => self.guests,
            Kind::Privileged => self.privileged,
        }
    }

    fn describe(self) -> String {
        let kinds: Vec<&str> = Kind::ALL
            .into_iter()
            .filter(|k| self.covers(*k))
            .map(Kind::name)
            .collect();
        kinds.join(" and ")
    }
}

/// Query fragments that make a scope one of directory roles.
const ROLE_QUERIES: &[&str] = &[
    "/rolemanagement/",
    "roledefinition",
    "roleassignmentschedule",
    "roleeligibilityschedule",
    "/directoryroles",
];

/// Query fragments that reach user accounts.
const ACCOUNT_QUERIES: &[&str] = &[
    "/users",
    "members",
    "approleassignedto",
    "accesspackageassignments",
];

/// What one Graph scope query reaches; `None` when it reaches no account (a
/// list of groups to enumerate) or is not recognised.
fn query_reach(query: &str) -> Option<Reach> {
    let q: String = query
        .replace("%20", "")
        .replace("%27", "'")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '+')
        .collect::<String>()
        .to_ascii_lowercase();
    if ROLE_QUERIES.iter().any(|r| q.contains(r)) {
        return Some(Reach::PRIVILEGED);
    }
    let guests = q.contains("usertypeeq'guest'");
    let members = q.contains("usertypeeq'member'");
    if guests || members {
        return Some(Reach {
            members,
            guests,
            privileged: false,
        });
    }
    ACCOUNT_QUERIES
        .iter()
        .any(|a| q.contains(a))
        .then_some(Reach {
            members: true,
            guests: true,
            privileged: false,
        })
}

/// What a review covers, from its scope queries (joined with `"; "` in the
/// facts); `None` when no query is recognised. A review of directory roles
/// covers privileged role assignments only, whatever principals it names.
fn reach(review: &AccessReview) -> Option<Reach> {
    let reaches: Vec<Reach> = review
        .scope
        .split("; ")
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .filter_map(query_reach)
        .collect();
    if reaches.iter().any(|r| r.privileged) {
        return Some(Reach::PRIVILEGED);
    }
    let all = reaches.into_iter().fold(Reach::default(), Reach::union);
    (all != Reach::default()).then_some(all)
}

/// How many reviews a detail names before it says "and N more".
const NAMED: usize = 3;

/// `items` joined with "; ", the first [`NAMED`] of them and a count of the rest.
fn named(items: Vec<String>) -> String {
    let rest = items.len().saturating_sub(NAMED);
    let mut text = items.into_iter().take(NAMED).collect::<Vec<_>>().join("; ");
    if rest > 0 {
        text.push_str(&format!("; and {rest} more"));
    }
    text
}

/// One review in a detail: its name and its last completion.
fn last_completed(review: &AccessReview, input: &CheckInput<'_>) -> String {
    let last = review
        .instances
        .iter()
        .filter(|i| completed(i))
        .filter_map(|i| i.end)
        .filter(|end| *end <= input.as_of)
        .max();
    match last {
        Some(end) => format!(
            "`{}` last completed {} days ago",
            review.name,
            days_between(end, input.as_of)
        ),
        None => format!("`{}` never completed", review.name),
    }
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let days = i64::from(input.limits.access_review_days);
    let reviews: Vec<(&AccessReview, Option<Reach>, bool)> = input
        .facts
        .access_reviews
        .iter()
        .map(|r| {
            let recent = r.instances.iter().any(|i| recent(i, days, input.as_of));
            (r, reach(r), recent)
        })
        .collect();
    let enabled = |t: UserType| {
        input
            .facts
            .users
            .iter()
            .any(|u| u.enabled && u.user_type == t)
    };
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| match k {
            Kind::Members => enabled(UserType::Member),
            Kind::Guests => enabled(UserType::Guest),
            Kind::Privileged => true,
        })
        .collect();
    let mut failing = Vec::new();
    let mut unproven = Vec::new();
    for kind in &kinds {
        let covering: Vec<&AccessReview> = reviews
            .iter()
            .filter(|(_, reach, _)| reach.is_some_and(|r| r.covers(*kind)))
            .map(|(r, ..)| *r)
            .collect();
        if reviews
            .iter()
            .any(|(_, reach, recent)| *recent && reach.is_some_and(|r| r.covers(*kind)))
        {
            continue;
        }
        let subject = |detail: String| Subject {
            id: kind.id().to_owned(),
            name: kind.name().to_owned(),
            detail,
        };
        let unreadable: Vec<String> = reviews
            .iter()
            .filter(|(_, reach, recent)| *recent && reach.is_none())
            .map(|(r, ..)| format!("`{}` (scope `{}`)", r.name, r.scope))
            .collect();
        if !unreadable.is_empty() {
            unproven.push(subject(format!(
                "no review known to cover them completed in the last {days} days; a review that did complete has a scope that cannot be read: {}",
                named(unreadable)
            )));
            continue;
        }
        let detail = if reviews.is_empty() {
            "no access review is configured".to_owned()
        } else if covering.is_empty() {
            let in_place = reviews
                .iter()
                .map(|(r, reach, _)| match reach {
                    Some(reach) => format!("`{}` covers {}", r.name, reach.describe()),
                    None => format!("`{}` has a scope that cannot be read", r.name),
                })
                .collect();
            format!("no access review covers them ({})", named(in_place))
        } else {
            let last = covering.iter().map(|r| last_completed(r, input)).collect();
            format!(
                "no review covering them completed in the last {days} days ({})",
                named(last)
            )
        };
        failing.push(subject(detail));
    }
    Outcome::judge_all(kinds.len(), failing, unproven, "kinds of account")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, days_ago, ids, run as run_with, user};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Facts, ReviewInstance, User};

    /// Scope queries as the collector stores them (`scope` and
    /// `instanceEnumerationScope` queries joined with "; ").
    const ALL_GUESTS: &str = "/users?$filter=(userType eq 'Guest')";
    const ALL_USERS: &str = "/users";
    const GROUP: &str = "/groups/0c3a/transitiveMembers";
    const UNIFIED_GROUPS_GUESTS: &str = "./members/microsoft.graph.user/?$count=true&$filter=(userType eq 'Guest'); /groups?$filter=(groupTypes/any(c:c+eq+'Unified'))&$count=true";
    const UNIFIED_GROUPS_ALL: &str =
        "./members; /groups?$filter=(groupTypes/any(c:c+eq+'Unified'))&$count=true";
    const APP: &str = "/servicePrincipals/5d1c/appRoleAssignedTo";
    const ROLE: &str = "/roleManagement/directory/roleAssignmentScheduleInstances?$expand=principal&$filter=(isof(principal,'microsoft.graph.user') and roleDefinitionId eq '62e90394-69f5-4237-9190-012177145e10')";
    const ROLE_BY_PRINCIPALS: &str =
        "/users; /groups; /roleManagement/directory/roleDefinitions/62e90394-69f5-4237-9190-012177145e10";

    fn instance(status: &str, ended: Option<i64>) -> ReviewInstance {
        ReviewInstance {
            id: format!("{status}-{ended:?}"),
            status: status.into(),
            start: ended.map(|d| days_ago(d + 14)),
            end: ended.map(days_ago),
            decisions: vec![],
        }
    }

    fn review(id: &str, scope: &str, instances: Vec<ReviewInstance>) -> AccessReview {
        AccessReview {
            id: format!("m365:{id}"),
            name: format!("Review {id}"),
            guests: scope.contains("'Guest'"),
            scope: scope.into(),
            status: "InProgress".into(),
            instances,
        }
    }

    /// A review of `scope` completed `ended` days ago.
    fn done(id: &str, scope: &str, ended: i64) -> AccessReview {
        review(id, scope, vec![instance("Completed", Some(ended))])
    }

    /// An enabled member and an enabled guest.
    fn people() -> Vec<User> {
        vec![
            user("m", true, UserType::Member),
            user("g", true, UserType::Guest),
        ]
    }

    fn judge_users(users: Vec<User>, reviews: Vec<AccessReview>, days: u32) -> Outcome {
        let facts = complete(
            Facts {
                users,
                access_reviews: reviews,
                ..Facts::default()
            },
            &[FactKind::Users, FactKind::AccessReviews],
        );
        let limits = Limits {
            access_review_days: days,
            ..Limits::DEFAULT
        };
        run_with(&CHECK, &facts, &limits)
    }

    fn judge(reviews: Vec<AccessReview>, days: u32) -> Outcome {
        judge_users(people(), reviews, days)
    }

    fn unproven(out: &Outcome) -> Vec<&str> {
        out.unproven.iter().map(|s| s.id.as_str()).collect()
    }

    const MEMBERS: &str = "access-reviews:members";
    const GUESTS: &str = "access-reviews:guests";
    const ROLES: &str = "access-reviews:privileged-roles";

    #[test]
    fn scopes_read_as_kinds_of_account() {
        let members_and_guests = Some(Reach {
            members: true,
            guests: true,
            privileged: false,
        });
        let guests_only = Some(Reach {
            members: false,
            guests: true,
            privileged: false,
        });
        let cases: Vec<(&str, Option<Reach>)> = vec![
            (ALL_GUESTS, guests_only),
            (UNIFIED_GROUPS_GUESTS, guests_only),
            ("/users?$filter=(userType+eq+'Guest')", guests_only),
            (
                "/users?$filter=(userType eq 'Member')",
                Some(Reach {
                    members: true,
                    guests: false,
                    privileged: false,
                }),
            ),
            (ALL_USERS, members_and_guests),
            (GROUP, members_and_guests),
            (UNIFIED_GROUPS_ALL, members_and_guests),
            (APP, members_and_guests),
            (
                "/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq 'x')",
                members_and_guests,
            ),
            (ROLE, Some(Reach::PRIVILEGED)),
            (ROLE_BY_PRINCIPALS, Some(Reach::PRIVILEGED)),
            ("", None),
            ("group", None),
            ("/groups?$filter=(groupTypes/any(c:c+eq+'Unified'))", None),
        ];
        for (scope, want) in cases {
            assert_eq!(reach(&review("r", scope, vec![])), want, "{scope}");
        }
    }

    #[test]
    fn guest_only_review_does_not_cover_members() {
        let out = judge(vec![done("guests", ALL_GUESTS, 30)], 180);
        assert_eq!(out.verdict, Verdict::Fail);
        assert_eq!(ids(&out), [MEMBERS, ROLES]);
        assert!(
            out.failing[0]
                .detail
                .contains("`Review guests` covers guest accounts"),
            "{:?}",
            out.failing
        );
    }

    #[test]
    fn tenant_wide_review_covers_members_and_guests() {
        let out = judge(vec![done("all", ALL_USERS, 30)], 180);
        assert_eq!(ids(&out), [ROLES]);
        let out = judge(
            vec![done("all", ALL_USERS, 30), done("admins", ROLE, 60)],
            180,
        );
        assert_eq!(out.verdict, Verdict::Pass);
        assert_eq!(out.evaluated, 3);
    }

    #[test]
    fn unreadable_scope_is_unproven() {
        let out = judge(vec![done("odd", "", 30)], 180);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert_eq!(unproven(&out), [GUESTS, MEMBERS, ROLES]);
        assert!(out.failing.is_empty());
        // A readable review decides what it covers; the rest stays unproven.
        let out = judge(vec![done("odd", "", 30), done("all", ALL_USERS, 30)], 180);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert_eq!(unproven(&out), [ROLES]);
    }

    #[test]
    fn table() {
        type Case = (
            &'static str,
            Vec<AccessReview>,
            u32,
            Verdict,
            &'static [&'static str],
        );
        let everything = |ended: i64, status: &str| {
            vec![
                review("all", ALL_USERS, vec![instance(status, Some(ended))]),
                review("admins", ROLE, vec![instance(status, Some(ended))]),
            ]
        };
        let cases: Vec<Case> = vec![
            (
                "recent completion",
                everything(30, "Completed"),
                180,
                Verdict::Pass,
                &[],
            ),
            (
                "applied counts",
                everything(30, "Applied"),
                180,
                Verdict::Pass,
                &[],
            ),
            (
                "too old",
                everything(200, "Completed"),
                180,
                Verdict::Fail,
                &[GUESTS, MEMBERS, ROLES],
            ),
            (
                "in progress only",
                everything(2, "InProgress"),
                180,
                Verdict::Fail,
                &[GUESTS, MEMBERS, ROLES],
            ),
            (
                "no end time",
                vec![
                    review("all", ALL_USERS, vec![instance("Completed", None)]),
                    done("admins", ROLE, 30),
                ],
                180,
                Verdict::Fail,
                &[GUESTS, MEMBERS],
            ),
            (
                "ends in the future",
                vec![done("all", ALL_USERS, -5), done("admins", ROLE, 30)],
                180,
                Verdict::Fail,
                &[GUESTS, MEMBERS],
            ),
            (
                "no reviews at all",
                vec![],
                180,
                Verdict::Fail,
                &[GUESTS, MEMBERS, ROLES],
            ),
            (
                "stricter period",
                everything(100, "Completed"),
                90,
                Verdict::Fail,
                &[GUESTS, MEMBERS, ROLES],
            ),
            (
                "groups, guests and roles reviewed separately",
                vec![
                    done("groups", UNIFIED_GROUPS_ALL, 20),
                    done("guests", UNIFIED_GROUPS_GUESTS, 40),
                    done("admins", ROLE_BY_PRINCIPALS, 60),
                ],
                180,
                Verdict::Pass,
                &[],
            ),
            (
                "a role review proves nothing about members",
                vec![
                    done("guests", ALL_GUESTS, 20),
                    done("admins", ROLE_BY_PRINCIPALS, 20),
                ],
                180,
                Verdict::Fail,
                &[MEMBERS],
            ),
            (
                "a stale review beside a recent one of the same kind",
                vec![
                    done("old", GROUP, 400),
                    done("app", APP, 30),
                    done("admins", ROLE, 30),
                ],
                180,
                Verdict::Pass,
                &[],
            ),
            (
                "an unreadable review that never completed proves nothing",
                vec![
                    review("odd", "", vec![instance("InProgress", Some(1))]),
                    done("guests", ALL_GUESTS, 20),
                ],
                180,
                Verdict::Fail,
                &[MEMBERS, ROLES],
            ),
        ];
        for (name, reviews, days, verdict, failing) in cases {
            let out = judge(reviews, days);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
            assert!(out.unproven.is_empty(), "{name}");
        }
    }

    #[test]
    fn only_kinds_the_directory_has_are_subjects() {
        let mut off = user("g", false, UserType::Guest);
        off.enabled = false;
        let reviews = vec![done("all", GROUP, 30), done("admins", ROLE, 30)];
        let out = judge_users(vec![user("m", true, UserType::Member), off], reviews, 180);
        assert_eq!(out.verdict, Verdict::Pass);
        assert_eq!(out.evaluated, 2, "members and roles; no enabled guest");
        let out = judge_users(vec![user("m", true, UserType::Member)], vec![], 180);
        assert_eq!(ids(&out), [MEMBERS, ROLES]);
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(
            vec![
                review(
                    "guests",
                    ALL_GUESTS,
                    vec![
                        instance("Completed", Some(200)),
                        instance("Completed", Some(20))
                    ]
                ),
                done("stale admins", ROLE, 250),
                review("never", GROUP, vec![instance("InProgress", Some(1))]),
            ],
            180
        ));
    }
}

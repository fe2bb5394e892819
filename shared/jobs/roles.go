package jobs

// SecurityManager is the access level of GitLab's security_manager role:
// above reporter, within developer (GitLab lists it for developers).
const SecurityManager = 25

// roles are GitLab's role names with their access levels, in the order
// GitLab lists them (security_manager, the newest, last).
var roles = []struct {
	name  string
	level int
}{
	{"guest", Guest}, {"planner", Planner}, {"reporter", Reporter}, {"developer", Developer},
	{"maintainer", Maintainer}, {"owner", Owner}, {"security_manager", SecurityManager},
}

// RolesUpTo names every role whose access level is at or below level: the
// roles_in_project of GET /job/allowed_agents.
func RolesUpTo(level int) []string {
	out := []string{}
	for _, r := range roles {
		if level > NoAccess && r.level <= level {
			out = append(out, r.name)
		}
	}
	return out
}

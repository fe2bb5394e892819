package render

import (
	"encoding/json"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// AllowedAgents is the response of GET /job/allowed_agents.
type AllowedAgents struct {
	AllowedAgents []AllowedAgent  `json:"allowed_agents"`
	Job           idOnly          `json:"job"`
	Pipeline      idOnly          `json:"pipeline"`
	Project       agentsProject   `json:"project"`
	User          agentsUser      `json:"user"`
	Environment   json.RawMessage `json:"environment,omitempty"`
}

// AllowedAgent is one agent the job may use.
type AllowedAgent struct {
	ID            int64           `json:"id"`
	ConfigProject json.RawMessage `json:"config_project"`
	Configuration json.RawMessage `json:"configuration"`
}

type idOnly struct {
	ID int64 `json:"id"`
}

type agentsProject struct {
	ID     int64    `json:"id"`
	Groups []idOnly `json:"groups"`
}

type agentsUser struct {
	ID             int64    `json:"id"`
	Username       string   `json:"username"`
	RolesInProject []string `json:"roles_in_project"`
}

// NewAllowedAgents builds the allowed_agents response of job j of project p
// run by user u with access level access: groups are p's group and its
// ancestors, agents those authorized, with their configuration projects.
func NewAllowedAgents(j *jobs.Job, p *jobs.Project, u *jobs.User, access int,
	groups []*jobs.Group, agents []*jobs.Agent, configProjects map[int64]*jobs.Project) *AllowedAgents {
	out := &AllowedAgents{
		AllowedAgents: []AllowedAgent{},
		Job:           idOnly{j.ID},
		Pipeline:      idOnly{j.PipelineID},
		Project:       agentsProject{ID: p.ID, Groups: []idOnly{}},
		User:          agentsUser{ID: u.ID, Username: u.Username, RolesInProject: jobs.RolesUpTo(access)},
		Environment:   environment(j.Environment),
	}
	for _, g := range groups {
		out.Project.Groups = append(out.Project.Groups, idOnly{g.ID})
	}
	for _, a := range agents {
		agent := AllowedAgent{ID: a.ID, ConfigProject: null, Configuration: a.Configuration}
		if cp := configProjects[a.ConfigProjectID]; cp != nil {
			agent.ConfigProject = raw(cp.Identity)
		}
		if len(agent.Configuration) == 0 {
			agent.Configuration = json.RawMessage("{}")
		}
		out.AllowedAgents = append(out.AllowedAgents, agent)
	}
	return out
}

// environment is the job's environment as GitLab shows it here: tier and
// slug, compacted (no nulls); nil, and so omitted, when the job has none.
func environment(doc json.RawMessage) json.RawMessage {
	var env struct {
		Tier *string `json:"tier,omitempty"`
		Slug *string `json:"slug,omitempty"`
	}
	if len(doc) == 0 || json.Unmarshal(doc, &env) != nil || (env.Tier == nil && env.Slug == nil) {
		return nil
	}
	b, _ := json.Marshal(env)
	return b
}

package jobs

// Caller is who makes a request, as authentication resolved it against the
// target project.
type Caller struct {
	User   *User  // nil for anonymous callers
	Token  *Token // nil for anonymous callers
	Access int    // the user's access level in the project
}

// Anonymous reports whether nobody authenticated.
func (c Caller) Anonymous() bool { return c.User == nil }

// Admin reports whether the caller is an instance administrator.
func (c Caller) Admin() bool { return c.User != nil && c.User.Admin }

// AtLeast reports whether the caller has level in the project; admins have all.
func (c Caller) AtLeast(level int) bool { return c.Admin() || c.Access >= level }

// CanReadProject is GitLab's read_project: public projects are open to all,
// internal ones to every signed-in user, private ones to members.
func (c Caller) CanReadProject(p *Project) bool {
	switch {
	case c.AtLeast(Guest), p.Visibility == Public:
		return true
	case p.Visibility == Internal:
		return !c.Anonymous()
	}
	return false
}

// CanReadBuilds is GitLab's read_build: Reporter and up, and everyone who can
// read the project when its pipelines are public.
func (c Caller) CanReadBuilds(p *Project) bool {
	return c.AtLeast(Reporter) || (p.PublicBuilds && c.CanReadProject(p))
}

// CanUpdateJob is GitLab's update_build on a job: Developer and up, and
// Maintainer and up where the job's ref is protected.
func (c Caller) CanUpdateJob(p *Project, j *Job) bool {
	if p.Protected(j.Ref) {
		return c.AtLeast(Maintainer)
	}
	return c.AtLeast(Developer)
}

// Identity is what a request's credentials name, as the store found it:
// the token, its user, that user's access level in the request's project
// and, for a CI job token, the job that owns it. Missing things are nil;
// an anonymous request has the zero Identity.
type Identity struct {
	Token    *Token
	User     *User
	Access   int
	TokenJob *Job
}

// Package jobs is the domain of the Jobs API: jobs, their statuses and the
// rules of the state machine. It knows nothing of HTTP or AWS.
package jobs

// Status is one of GitLab's 13 commit statuses.
type Status string

const (
	Created            Status = "created"
	Pending            Status = "pending"
	Running            Status = "running"
	Success            Status = "success"
	Failed             Status = "failed"
	Canceled           Status = "canceled"
	Skipped            Status = "skipped"
	Manual             Status = "manual"
	Scheduled          Status = "scheduled"
	Preparing          Status = "preparing"
	WaitingForResource Status = "waiting_for_resource"
	WaitingForCallback Status = "waiting_for_callback"
	Canceling          Status = "canceling"
)

// Statuses lists every status in GitLab's enum order; it is also the set of
// valid `scope` values.
var Statuses = []Status{Created, Pending, Running, Success, Failed, Canceled, Skipped,
	Manual, Scheduled, Preparing, WaitingForResource, WaitingForCallback, Canceling}

// ParseStatus reports whether s names a status.
func ParseStatus(s string) (Status, bool) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, true
		}
	}
	return "", false
}

// Completed reports GitLab's COMPLETED set: success, failed, canceled, skipped.
func (s Status) Completed() bool {
	switch s {
	case Success, Failed, Canceled, Skipped:
		return true
	}
	return false
}

// Executing reports whether a job token of a job in this status is valid.
func (s Status) Executing() bool { return s == Running || s == Canceling }

// Cancelable is GitLab's CANCELABLE_STATUSES.
func (s Status) Cancelable() bool {
	switch s {
	case Created, WaitingForResource, Preparing, WaitingForCallback, Pending, Running, Manual, Scheduled:
		return true
	}
	return false
}

package store

import (
	"context"
	"strings"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// Related reads everything js refers to in one BatchGetItem round trip, each
// shared item once however many jobs name it.
//
// Errors: only the DynamoDB client's.
func (s *Store) Related(ctx context.Context, js ...*jobs.Job) (*jobs.Related, error) {
	keys := relatedKeys(js)
	if len(keys) == 0 {
		return decodeRelated(nil)
	}
	got, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	return decodeRelated(got)
}

func relatedKeys(js []*jobs.Job) []item {
	var keys []item
	for _, j := range js {
		if j.UserID != 0 {
			keys = append(keys, userKey(j.UserID))
		}
		if j.RunnerID != 0 {
			keys = append(keys, runnerKey(j.RunnerID))
		}
		keys = append(keys, pipelineKey(j.PipelineID))
		if j.DownstreamPipelineID != 0 {
			keys = append(keys, pipelineKey(j.DownstreamPipelineID))
		}
	}
	return keys
}

// decodeRelated picks users, pipelines and runners out of a batch result.
func decodeRelated(got map[string]item) (*jobs.Related, error) {
	r := jobs.NewRelated()
	for ks, it := range got {
		var err error
		switch {
		case strings.HasPrefix(ks, "U#"):
			u := &jobs.User{}
			err = unmarshal(it, u)
			r.Users[u.ID] = u
		case strings.HasPrefix(ks, "PL#"):
			p := &jobs.Pipeline{}
			err = unmarshal(it, p)
			r.Pipelines[p.ID] = p
		case strings.HasPrefix(ks, "R#"):
			rn := &jobs.Runner{}
			err = unmarshal(it, rn)
			r.Runners[rn.ID] = rn
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

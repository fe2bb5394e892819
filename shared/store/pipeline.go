package store

import (
	"context"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// PipelineJobs lists the jobs of one kind (builds or bridges) of a pipeline,
// newest first: one Query per index partition, the latest tries and, with
// r.IncludeRetried, the retried ones too; per status when r names statuses.
// Every Query reads at most r.Skip+r.Limit+1 items.
//
// Errors: only the DynamoDB client's.
func (s *Store) PipelineJobs(ctx context.Context, pipelineID int64, kind jobs.Kind, r Range) (*Page, error) {
	return s.PipelineJobsWith(ctx, nil, pipelineID, kind, r)
}

// PipelineJobsWith is PipelineJobs taking sp's page when sp read what
// PipelineJobs reads (sp may be nil).
func (s *Store) PipelineJobsWith(ctx context.Context, sp *Speculation, pipelineID int64, kind jobs.Kind, r Range) (*Page, error) {
	return s.run(ctx, sp, pipelineJobsPlan(pipelineID, kind, r))
}

func pipelineJobsPlan(pipelineID int64, kind jobs.Kind, r Range) plan {
	tries := []bool{false}
	if r.IncludeRetried {
		tries = append(tries, true)
	}
	var parts []partition
	for _, retried := range tries {
		if len(r.Statuses) == 0 {
			parts = append(parts, gsi(GSIPipelineJobs, pipelinePK(pipelineID, kind, retried)))
			continue
		}
		for _, st := range r.Statuses {
			parts = append(parts, gsi(GSIPipelineJobsByStatus, pipelineStatusPK(pipelineID, kind, st, retried)))
		}
	}
	return plan{parts: parts, upTo: below(r.After.ID), skip: r.Skip, limit: r.Limit, whole: r.Whole}
}

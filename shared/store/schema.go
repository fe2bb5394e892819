// Package store is the DynamoDB repository of the Jobs API: one table holds
// projects, members, users, tokens, pipelines, runners, agents and jobs.
//
// Key design (PK, SK; GSI keys only on job items):
//
//	P#<project>          P          project (also the builds counter nb, its
//	                                highest build id mx, the end ie of its
//	                                leased ids, its shard count sh)
//	PP#<lower(path)>     P          project path alias -> project id
//	P#<project>          M#<user>   membership with access level
//	P#<project>          A#<agent>  agent authorized for the project
//	P#<project>          RF#<ref>   a pipeline ref with builds (and, in a project stored
//	                                before ra, their count: refcounts.go)
//	P#<project>#RF#<ref> RF         the project's builds of the ref, counted (the highest ref ordinal)
//	P#<project>#N#<h>    <bucket>   rank masks of completed builds, per 16 ordinals (ranks.go)
//	P#<project>#RN#<len(ref)>#<ref>#<h>  <bucket>  the same of a ref's builds, per 16 ref ordinals
//	                                (a ref over 22 bytes: RN#h#<its SHA-256, 128 bits>, rankRef)
//	G#<group>            G          group;  G#<group> A#<agent>: agent authorized for the group
//	U#<user>             U          user
//	T#<sha256(token)>    T          access token or job token
//	PL#<pipeline>        PL         pipeline with its commit
//	R#<runner>           R          runner
//	A#<agent>            A          agent
//	J#<job>              J          job
//	COUNTER              JOB        the global job id counter (leased by ADD, ids.go)
//	I#<sha256(once)>     I          an action's Idempotency-Key record (see Once), expiring by ttl
//	P#<project>#Q#<k>    <queued at>#<token>  a creation queued for the project's combiner (combine.go)
//
// Job items carry six index keys so that every list page is one Query per
// status that reads only the rows it returns:
//
//	GSI1 builds of a project        P#<project>#B[#<shard>]           by ordinal
//	GSI2 builds of a project        P#<project>#B#<status>[#<shard>]  by id
//	GSI3 jobs of a pipeline         PL#<pipeline>#<B|X>#<L|R>      by id
//	GSI4 jobs of a pipeline         PL#<pipeline>#<B|X>#<status>#<L|R> by id
//	GSI5 downloadable builds of the newest successful pipeline of a ref,
//	     by name                    P#<project>#RF#<len(ref)>#<ref>#<name>  by pipeline id
//
//	GSI6 downloadable builds of every successful pipeline of a ref, by name:
//	     the same partition key, by root pipeline id then own pipeline id
//
//	GSI7 builds of a project's ref P#<project>#RB#<len(ref)>#<ref>           by ref ordinal (rk, ro)
//	GSI8 the same per status        P#<project>#RB#<len(ref)>#<ref>#<status>  by id (rsk, GSI2SK)
//
// GSI5 and GSI6 are sparse: only latest-try builds with artifacts in the newest
// successful pipeline of their ref carry its keys, so the by-ref artifact
// routes find their job with one Query that reads one item.
//
// B marks builds, X bridges, L the latest try of a job and R retried ones.
// A project of sh > 1 write shards deals its builds over them by ordinal
// (shard = ordinal mod sh); an unsharded one's keys have no shard.
package store

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Index names and their key attributes.
const (
	GSIProjectBuilds         = "GSI1"
	GSIProjectBuildsByStatus = "GSI2"
	GSIPipelineJobs          = "GSI3"
	GSIPipelineJobsByStatus  = "GSI4"
	GSIRefArtifacts          = "GSI5"
	GSIRefArtifactsSearch    = "GSI6"
	GSIRefBuilds             = "GSI7"
	GSIRefBuildsByStatus     = "GSI8"
)

// The list indexes (listed) project only what a list page reads
// (listedAttr): read units are the index entries' bytes, and a whole
// job with every other index's keys is twice what a page renders. What
// needs whole jobs reads them from the table by key (wholeJobs). The
// by-ref artifact indexes serve downloads, which need the whole job.
var gsiKeys = []struct {
	name, pk, sk string
	listed       bool
}{
	{GSIProjectBuilds, "GSI1PK", "GSI1SK", true},
	{GSIProjectBuildsByStatus, "GSI2PK", "GSI2SK", true},
	{GSIPipelineJobs, "GSI3PK", "GSI3SK", true},
	{GSIPipelineJobsByStatus, "GSI4PK", "GSI4SK", true},
	{GSIRefArtifacts, "GSI5PK", "GSI5SK", false},
	{GSIRefArtifactsSearch, "GSI6PK", "GSI6SK", false},
	// Short names, and sort keys the job item has anyway (its ref ordinal,
	// GSI2's id): every byte of a job item is read on every page.
	{GSIRefBuilds, "rk", "ro", true},
	{GSIRefBuildsByStatus, "rsk", "GSI2SK", true},
}

// indexOnlyAttrs are a job item's key and those of its index keys that are
// no job attribute (the ones named for their index; ro, which the ref
// index sorts by, is the job's ref ordinal): what a copy of the job kept
// elsewhere leaves out.
var indexOnlyAttrs = func() []string {
	out := []string{"PK", "SK"}
	for _, g := range gsiKeys {
		out = append(out, g.pk)
		if strings.HasPrefix(g.sk, "GSI") {
			out = append(out, g.sk)
		}
	}
	return out
}()

// TableSchema is the one definition of the table; template.yaml declares the
// same (a test compares them) and local tools create the table from it.
func TableSchema(name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange},
		},
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS},
		},
	}
	defined := map[string]bool{}
	define := func(name string, t types.ScalarAttributeType) {
		if !defined[name] {
			defined[name] = true
			in.AttributeDefinitions = append(in.AttributeDefinitions,
				types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: t})
		}
	}
	for _, g := range gsiKeys {
		define(g.pk, types.ScalarAttributeTypeS)
		define(g.sk, types.ScalarAttributeTypeN)
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName: aws.String(g.name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(g.pk), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(g.sk), KeyType: types.KeyTypeRange},
			},
			Projection: projection(g.listed),
		})
	}
	return in
}

func projection(listed bool) *types.Projection {
	if !listed {
		return &types.Projection{ProjectionType: types.ProjectionTypeAll}
	}
	return &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: []string{listedAttr}}
}

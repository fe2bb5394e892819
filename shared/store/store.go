package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// The store's sentinel errors; each exported method says which it returns.
// Any other error is the DynamoDB client's (a 500 to the API).
var (
	// ErrNotFound: an item that must exist does not (a job gone between
	// the lookup and a write).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a conditional write kept losing to other writers.
	ErrConflict = errors.New("conflicting write")
)

// Store is the DynamoDB repository. It is safe for concurrent use. One
// Store lives as long as its container and keeps the warm caches.
type Store struct {
	db    *dynamodb.Client
	table string
	warm  caches
	ids   idLease
	// counts tells speculations waiting for a project's build count what a
	// lookup has just read (see SpeculateProjectBuilds).
	counts countWaits
	// importCalls is how many batch calls an import's writer or check
	// keeps going (SetImportCalls); 0 for batchesInFlight.
	importCalls int
}

// caches are what a warm container remembers between requests; see WarmTTL.
// Cached values are shared: nobody may change them.
type caches struct {
	tokens    *warm[string, *jobs.Token]   // by token hash
	users     *warm[int64, *jobs.User]     // by id
	members   *warm[[2]int64, int]         // access level by (project, user), 0 for none
	paths     *warm[string, int64]         // project id by lower-case path; a hint, checked against the project read
	runners   *warm[int64, *jobs.Runner]   // by id
	pipelines *warm[int64, *jobs.Pipeline] // by id, for their documents only: actions change nothing else but counts
	builds    *warm[listOf, buildsHint]    // a project's (or ref's) build count and shards last read: a hint for speculative pages
	projects  *warm[int64, *jobs.Project]  // by id, for lookups that need no exact build count
	pages     *warm[string, *Page]         // list pages by what their Queries read (pageKey), for PageTTL
	ranks     *warm[string, *ranks]        // rank counts as a page read them, by list and statuses, for PageTTL
	rankRows  *warm[string, float64]       // the rows a bucket of those counts held: a hint (perBucket)
	busy      *warm[int64, int64]          // projects whose creations queued here within leaseFor, and the lease's end as last read (Unix ms): the next one queues at once
}

// New returns a Store on table, its caches empty.
func New(db *dynamodb.Client, table string) *Store {
	return &Store{db: db, table: table, warm: caches{
		tokens:    newWarm[string, *jobs.Token](WarmTTL),
		users:     newWarm[int64, *jobs.User](WarmTTL),
		members:   newWarm[[2]int64, int](WarmTTL),
		paths:     newWarm[string, int64](WarmTTL),
		runners:   newWarm[int64, *jobs.Runner](WarmTTL),
		pipelines: newWarm[int64, *jobs.Pipeline](WarmTTL),
		builds:    newWarm[listOf, buildsHint](WarmTTL),
		projects:  newWarm[int64, *jobs.Project](WarmTTL),
		pages:     newWarm[string, *Page](PageTTL).holding(maxPages),
		ranks:     newWarm[string, *ranks](PageTTL).holding(maxRanks),
		rankRows:  newWarm[string, float64](WarmTTL),
		busy:      newWarm[int64, int64](leaseFor),
	}}
}

// listOf names a list of a project's builds that is counted: all of them
// (ref "") or one ref's.
type listOf struct {
	project int64
	ref     string
}

// Table names the table the store works on.
func (s *Store) Table() string { return s.table }

type item = map[string]types.AttributeValue

// buildsHint is what a speculative page of a project's builds needs to
// know of it.
type buildsHint struct {
	count   int64
	layouts []int // the shard counts whose keys its lists read (layoutsOf)
	ranked  bool  // the project's RankCounts
}

// JobSK is the sort key of every job item (PK J#<id>), as the table's
// stream hands it to the cleanup function.
const JobSK = "J"

func id(n int64) string { return strconv.FormatInt(n, 10) }

func key(pk, sk string) item {
	return item{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}}
}

func projectKey(p int64) item         { return key("P#"+id(p), "P") }
func projectPathKey(path string) item { return key("PP#"+strings.ToLower(path), "P") }
func memberKey(p, u int64) item       { return key("P#"+id(p), "M#"+id(u)) }
func userKey(u int64) item            { return key("U#"+id(u), "U") }
func tokenKey(hash string) item       { return key("T#"+hash, "T") }
func pipelineKey(p int64) item        { return key("PL#"+id(p), "PL") }
func runnerKey(r int64) item          { return key("R#"+id(r), "R") }
func groupKey(g int64) item           { return key("G#"+id(g), "G") }
func agentKey(a int64) item           { return key("A#"+id(a), "A") }
func jobKey(j int64) item             { return key("J#"+id(j), JobSK) }
func counterKey() item                { return key("COUNTER", "JOB") }

// MaxShards bounds a project's build index shards: a filtered page reads
// every shard of each status, so more shards cost reads.
const MaxShards = 32

// shardsOf is p's number of build index write shards (at least 1).
func shardsOf(p *jobs.Project) int { return max(p.Shards, 1) }

// layoutsOf is the shard counts whose keys p's lists read: its own, and
// while a reshard moves its builds the other one (Reshard).
func layoutsOf(p *jobs.Project) []int {
	if p.ShardsToo > 0 && p.ShardsToo != shardsOf(p) {
		return []int{shardsOf(p), p.ShardsToo}
	}
	return []int{shardsOf(p)}
}

// shardOf is the write shard of a build: ordinals are dealt round-robin, so
// every shard holds its exact share of any range of ordinals.
func shardOf(ordinal int64, shards int) int { return int(ordinal % int64(shards)) }

// shardSuffix ends the index partition keys of shard k of shards: nothing
// when the project is not sharded, so that its keys stay as they were.
func shardSuffix(shards, k int) string {
	if shards <= 1 {
		return ""
	}
	return "#" + strconv.Itoa(k)
}

// projectBuildsPK is the GSI1 partition of shard k of a project's builds.
func projectBuildsPK(p int64, shards, k int) string {
	return "P#" + id(p) + "#B" + shardSuffix(shards, k)
}

// projectStatusPK is the GSI2 partition of shard k of a project's builds
// of one status.
func projectStatusPK(p int64, st jobs.Status, shards, k int) string {
	return "P#" + id(p) + "#B#" + string(st) + shardSuffix(shards, k)
}

func kindMark(k jobs.Kind) string {
	if k == jobs.Bridge {
		return "X"
	}
	return "B"
}

func triesMark(retried bool) string {
	if retried {
		return "R"
	}
	return "L"
}

// refArtifactsPK is the GSI5 partition of a ref's job name; the ref's
// length keeps a ref with "#" apart from a job name with one.
func refArtifactsPK(p int64, ref, name string) string {
	return "P#" + id(p) + "#RF#" + strconv.Itoa(len(ref)) + "#" + ref + "#" + name
}

// refBuildsPK is the GSI7 partition of a project's builds of one pipeline
// ref (a branch and a tag of the same name share it: GitLab filters on the
// ref string); the length keeps any ref, "#" and all, apart from another.
func refBuildsPK(p int64, ref string, shards, k int) string {
	return refPK(p, ref) + shardSuffix(shards, k)
}

func refPK(p int64, ref string) string {
	return "P#" + id(p) + "#RB#" + strconv.Itoa(len(ref)) + "#" + ref
}

// refStatusPK is the GSI8 partition of the same, for one status.
func refStatusPK(p int64, ref string, st jobs.Status, shards, k int) string {
	return refPK(p, ref) + "#" + string(st) + shardSuffix(shards, k)
}

// searchKey orders GSI6 newest root pipeline first when read backwards,
// and within one root the parent before its children (the smaller own id,
// the larger key).
func searchKey(j *jobs.Job) int64 {
	const span = 1_000_000
	return j.RefPipelineID*span + span - 1 - min(max(j.PipelineID-j.RefPipelineID, 0), span-1)
}

// PipelinePK is the GSI3 partition of a pipeline's jobs of one kind and try.
func pipelinePK(pl int64, k jobs.Kind, retried bool) string {
	return "PL#" + id(pl) + "#" + kindMark(k) + "#" + triesMark(retried)
}

// pipelineStatusPK is the GSI4 partition of the same, for one status.
func pipelineStatusPK(pl int64, k jobs.Kind, st jobs.Status, retried bool) string {
	return "PL#" + id(pl) + "#" + kindMark(k) + "#" + string(st) + "#" + triesMark(retried)
}

func withKey(it item, k item) item {
	for n, v := range k {
		it[n] = v
	}
	return it
}

func num(n int64) types.AttributeValue  { return &types.AttributeValueMemberN{Value: id(n)} }
func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func encoderOptions(o *attributevalue.EncoderOptions) { o.TagKey = "db" }
func decoderOptions(o *attributevalue.DecoderOptions) { o.TagKey = "db" }

func marshal(v any) (item, error) {
	return attributevalue.MarshalMapWithOptions(v, encoderOptions)
}

func unmarshal(it item, v any) error {
	return attributevalue.UnmarshalMapWithOptions(it, v, decoderOptions)
}

// maxRef is the longest ref the ref indexes hold: its count item's sort
// key ("RF#" and the ref) must fit DynamoDB's 1,024 bytes. No git host
// makes refs that long; a longer one lists no builds.
const maxRef = 1000

// indexedRef reports whether the ref indexes can hold ref.
func indexedRef(ref string) bool { return ref != "" && len(ref) <= maxRef }

// hasRef reports whether j is listed among its ref's builds: a build of a
// pipeline with a ref.
func hasRef(j *jobs.Job) bool { return j.Kind != jobs.Bridge && indexedRef(j.Ref) }

// jobItem is the stored form of a job: its attributes plus its keys; shards
// is its project's number of build index shards.
func jobItem(j *jobs.Job, shards int) (item, error) {
	it, err := marshal(j)
	if err != nil {
		return nil, err
	}
	withKey(it, jobKey(j.ID))
	for _, n := range listedNames {
		delete(it, n)
	}
	it[listedAttr] = &types.AttributeValueMemberB{Value: packListed(j)}
	if j.Kind != jobs.Bridge {
		k := shardOf(j.Ordinal, shards)
		it["GSI1PK"], it["GSI1SK"] = str(projectBuildsPK(j.ProjectID, shards, k)), num(j.Ordinal)
		it["GSI2PK"], it["GSI2SK"] = str(projectStatusPK(j.ProjectID, j.Status, shards, k)), num(j.ID)
		if hasRef(j) {
			// Sorted by ro (the ref ordinal) and GSI2SK (the id), dealt
			// over the shards by the ref ordinal.
			kr := shardOf(j.RefOrdinal, shards)
			it["rk"], it["rsk"] = str(refBuildsPK(j.ProjectID, j.Ref, shards, kr)), str(refStatusPK(j.ProjectID, j.Ref, j.Status, shards, kr))
		}
	}
	it["GSI3PK"], it["GSI3SK"] = str(pipelinePK(j.PipelineID, j.Kind, j.Retried)), num(j.ID)
	it["GSI4PK"], it["GSI4SK"] = str(pipelineStatusPK(j.PipelineID, j.Kind, j.Status, j.Retried)), num(j.ID)
	if j.Kind != jobs.Bridge && !j.Retried && j.Downloadable() {
		if j.LatestForRef {
			it["GSI5PK"], it["GSI5SK"] = str(refArtifactsPK(j.ProjectID, j.Ref, j.Name)), num(j.PipelineID)
		}
		if j.RefPipelineID != 0 {
			it["GSI6PK"], it["GSI6SK"] = str(refArtifactsPK(j.ProjectID, j.Ref, j.Name)), num(searchKey(j))
		}
	}
	return it, nil
}

// batchGet reads keys in one BatchGetItem round trip (more only when
// DynamoDB hands back unprocessed keys), with strongly consistent reads.
// Results are keyed by PK+"|"+SK.
func (s *Store) batchGet(ctx context.Context, keys []item) (map[string]item, error) {
	return s.batchRead(ctx, keys, true)
}

// batchRead is batchGet, strongly consistent or not (BatchGetItem sets it
// per table and request: one choice for all keys). Eventually consistent
// reads cost half.
func (s *Store) batchRead(ctx context.Context, keys []item, consistent bool) (map[string]item, error) {
	out := make(map[string]item, len(keys))
	seen := make(map[string]bool, len(keys))
	unique := make([]item, 0, len(keys))
	for _, k := range keys {
		if ks := keyString(k); !seen[ks] {
			seen[ks] = true
			unique = append(unique, k)
		}
	}
	for start := 0; start < len(unique); start += 100 {
		got, err := s.batchGetKeys(ctx, types.KeysAndAttributes{
			Keys: unique[start:min(start+100, len(unique))], ConsistentRead: aws.Bool(consistent)})
		if err != nil {
			return nil, err
		}
		for _, it := range got {
			out[keyString(it)] = it
		}
	}
	return out, nil
}

// batchGetKeys reads up to 100 keys in one BatchGetItem, and again what
// DynamoDB leaves unprocessed (it does when the table or an item is
// throttled), after a backoff, until the context ends.
func (s *Store) batchGetKeys(ctx context.Context, keys types.KeysAndAttributes) ([]item, error) {
	var out []item
	req := map[string]types.KeysAndAttributes{s.table: keys}
	for attempt := 0; len(req[s.table].Keys) > 0; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt-1); err != nil {
				return nil, err
			}
		}
		res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems:           req,
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		}, typedBatchGet)
		if err != nil {
			return nil, fmt.Errorf("batch get: %w", err)
		}
		out = append(out, res.Responses[s.table]...)
		req = res.UnprocessedKeys
	}
	return out, nil
}

func keyString(it item) string {
	pk, _ := it["PK"].(*types.AttributeValueMemberS)
	sk, _ := it["SK"].(*types.AttributeValueMemberS)
	if pk == nil || sk == nil {
		return ""
	}
	return pk.Value + "|" + sk.Value
}

func (s *Store) put(ctx context.Context, it item) error {
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it})
	return err
}

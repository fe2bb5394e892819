package store

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/jobs"
)

// errShape: an attribute is not of the type the hand-written decoder
// expects; decodeJob then lets attributevalue decode the item.
var errShape = errors.New("unexpected attribute type")

// DecodeJob decodes a job item as the store writes it, for tools that read
// the table themselves (the load check's Scan).
func DecodeJob(it map[string]types.AttributeValue) (*jobs.Job, error) { return decodeJob(it) }

// IndexKeys are the partition keys of job j's list indexes (GSI1PK, GSI2PK,
// rk, rsk: those a build has) when its project has shards build index
// shards, as the store writes them, for the load check.
func IndexKeys(j *jobs.Job, shards int) (map[string]string, error) {
	it, err := jobItem(j, shards)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range []string{"GSI1PK", "GSI2PK", "rk", "rsk"} {
		if v, ok := it[n].(*types.AttributeValueMemberS); ok {
			out[n] = v.Value
		}
	}
	return out, nil
}

func decodeJob(it item) (*jobs.Job, error) {
	j := &jobs.Job{}
	if err := decodeJobFast(it, j); err != nil {
		// Something the fast path does not know: the reflective decoder
		// decides (and errs where it errs).
		*j = jobs.Job{}
		if err := unmarshalJob(it, j); err != nil {
			return nil, fmt.Errorf("decode job: %w", err)
		}
	}
	if l, ok := it[listedAttr]; ok {
		b, ok := l.(*types.AttributeValueMemberB)
		if !ok {
			return nil, fmt.Errorf("decode job: %s is a %T", listedAttr, l)
		}
		if err := unpackListed(b.Value, j); err != nil {
			return nil, fmt.Errorf("decode job: %w", err)
		}
	}
	if j.Kind == "" {
		j.Kind = jobs.Build
	}
	return j, nil
}

// unmarshalJob decodes a job item with attributevalue, its packed
// artifacts (unpackArtifacts) and L (decodeJob's) apart.
func unmarshalJob(it item, j *jobs.Job) error {
	rest := maps.Clone(it)
	delete(rest, listedAttr) // decodeJob's
	packed, ok := it["ar"].(*types.AttributeValueMemberS)
	if !ok {
		return unmarshal(rest, j)
	}
	delete(rest, "ar")
	if err := unmarshal(rest, j); err != nil {
		return err
	}
	var err error
	j.Artifacts, err = unpackArtifacts(packed.Value)
	return err
}

// decodeJobFast decodes a job item without reflection: a page decodes
// dozens of them per request. It must decode what attributevalue decodes
// (TestDecodeJobMatchesAttributevalue checks every field of jobs.Job).
func decodeJobFast(it item, j *jobs.Job) error {
	var err error
	for name, av := range it {
		if _, null := av.(*types.AttributeValueMemberNULL); null {
			continue
		}
		switch name {
		case "id":
			j.ID, err = avInt(av)
		case "pr":
			j.ProjectID, err = avInt(av)
		case "pl":
			j.PipelineID, err = avInt(av)
		case "k":
			var s string
			s, err = avString(av)
			j.Kind = jobs.Kind(s)
		case "st":
			var s string
			s, err = avString(av)
			j.Status = jobs.Status(s)
		case "sg":
			j.Stage, err = avString(av)
		case "n":
			j.Name, err = avString(av)
		case "rf":
			j.Ref, err = avString(av)
		case "tg":
			j.Tag, err = avBool(av)
		case "cv":
			j.Coverage, err = avFloatPtr(av)
		case "af":
			j.AllowFailure, err = avBool(av)
		case "ca":
			j.CreatedAt, err = avTime(av)
		case "qa":
			j.QueuedAt, err = avTimePtr(av)
		case "sa":
			j.StartedAt, err = avTimePtr(av)
		case "fa":
			j.FinishedAt, err = avTimePtr(av)
		case "ea":
			j.ErasedAt, err = avTimePtr(av)
		case "du":
			j.Duration, err = avFloatPtr(av)
		case "qd":
			j.QueuedDuration, err = avFloatPtr(av)
		case "u":
			j.UserID, err = avInt(av)
		case "ru":
			j.RunnerID, err = avInt(av)
		case "rm":
			j.RunnerManager, err = avBytes(av)
		case "fr":
			j.FailureReason, err = avString(av)
		case "ar":
			if packed, ok := av.(*types.AttributeValueMemberS); ok {
				j.Artifacts, err = unpackArtifacts(packed.Value)
			} else {
				j.Artifacts, err = avArtifacts(av) // as written before artifacts were packed
			}
		case "arf":
			j.ArtifactsFile, err = avArtifactsFile(av)
		case "ax":
			j.ArtifactsExpireAt, err = avTimePtr(av)
		case "arc":
			j.Archived, err = avBool(av)
		case "tl":
			j.TagList, err = avStrings(av)
		case "dp":
			j.DownstreamPipelineID, err = avInt(av)
		case "rt":
			j.Retried, err = avBool(av)
		case "w":
			j.When, err = avString(av)
		case "env":
			j.Environment, err = avBytes(av)
		case "sc":
			j.SupportsCanceling, err = avBool(av)
		case "dbg":
			j.DebugTrace, err = avBool(av)
		case "ht":
			j.HasTrace, err = avBool(av)
		case "tz":
			j.TraceSize, err = avInt(av)
		case "var":
			j.Variables, err = avVariables(av)
		case "x":
			j.Extra, err = avBytes(av)
		case "wu":
			j.WebURL, err = avString(av)
		case "o":
			j.Ordinal, err = avInt(av)
		case "ro":
			j.RefOrdinal, err = avInt(av)
		case "v":
			j.Version, err = avInt(av)
		case "fp":
			j.FilesPending, err = avBool(av)
		case "az":
			j.Archive, err = avArchive(av)
		case "aac":
			j.ArtifactsAccess, err = avString(av)
		case "lk":
			j.Locked, err = avBool(av)
		case "lr":
			j.LatestForRef, err = avBool(av)
		case "rp":
			j.RefPipelineID, err = avInt(av)
		case "apd":
			j.ArchivePending, err = avBool(av)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// avArchive reads the map of a job's uploaded zip.
func avArchive(av types.AttributeValue) (*jobs.Archive, error) {
	m, err := avMap(av)
	if err != nil {
		return nil, err
	}
	a := &jobs.Archive{}
	if v, ok := m["s"]; ok {
		a.Size, err = avInt(v)
	}
	return a, err
}

func avInt(av types.AttributeValue) (int64, error) {
	n, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return 0, errShape
	}
	return strconv.ParseInt(n.Value, 10, 64)
}

func avString(av types.AttributeValue) (string, error) {
	s, ok := av.(*types.AttributeValueMemberS)
	if !ok {
		return "", errShape
	}
	return s.Value, nil
}

func avBool(av types.AttributeValue) (bool, error) {
	b, ok := av.(*types.AttributeValueMemberBOOL)
	if !ok {
		return false, errShape
	}
	return b.Value, nil
}

func avFloatPtr(av types.AttributeValue) (*float64, error) {
	n, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return nil, errShape
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	return &f, err
}

func avTime(av types.AttributeValue) (time.Time, error) {
	s, ok := av.(*types.AttributeValueMemberS)
	if !ok {
		return time.Time{}, errShape
	}
	return time.Parse(time.RFC3339Nano, s.Value)
}

func avTimePtr(av types.AttributeValue) (*time.Time, error) {
	t, err := avTime(av)
	return &t, err
}

func avBytes(av types.AttributeValue) ([]byte, error) {
	b, ok := av.(*types.AttributeValueMemberB)
	if !ok {
		return nil, errShape
	}
	return b.Value, nil
}

func avList(av types.AttributeValue) ([]types.AttributeValue, error) {
	l, ok := av.(*types.AttributeValueMemberL)
	if !ok {
		return nil, errShape
	}
	return l.Value, nil
}

func avMap(av types.AttributeValue) (map[string]types.AttributeValue, error) {
	m, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		return nil, errShape
	}
	return m.Value, nil
}

func avStrings(av types.AttributeValue) ([]string, error) {
	l, err := avList(av)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(l))
	for i, v := range l {
		if out[i], err = avString(v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func avArtifacts(av types.AttributeValue) ([]jobs.Artifact, error) {
	l, err := avList(av)
	if err != nil {
		return nil, err
	}
	out := make([]jobs.Artifact, len(l))
	for i, v := range l {
		m, err := avMap(v)
		if err != nil {
			return nil, err
		}
		a := &out[i]
		for name, f := range m {
			if _, null := f.(*types.AttributeValueMemberNULL); null {
				continue
			}
			switch name {
			case "t":
				a.FileType, err = avString(f)
			case "s":
				var n int64
				n, err = avInt(f)
				a.Size = &n
			case "f":
				a.Filename, err = avString(f)
			case "ff":
				a.FileFormat, err = avString(f)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func avArtifactsFile(av types.AttributeValue) (*jobs.ArtifactsFile, error) {
	m, err := avMap(av)
	if err != nil {
		return nil, err
	}
	out := &jobs.ArtifactsFile{}
	for name, f := range m {
		if _, null := f.(*types.AttributeValueMemberNULL); null {
			continue
		}
		switch name {
		case "f":
			out.Filename, err = avString(f)
		case "s":
			out.Size, err = avInt(f)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func avVariables(av types.AttributeValue) ([]jobs.Variable, error) {
	l, err := avList(av)
	if err != nil {
		return nil, err
	}
	out := make([]jobs.Variable, len(l))
	for i, v := range l {
		m, err := avMap(v)
		if err != nil {
			return nil, err
		}
		for name, f := range m {
			if _, null := f.(*types.AttributeValueMemberNULL); null {
				continue
			}
			switch name {
			case "k":
				out[i].Key, err = avString(f)
			case "v":
				out[i].Value, err = avString(f)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// unpackArtifacts reads the artifacts attribute as items written before L
// packed it: one string, each artifact its type, size ("-" for none), file
// name and format, strings length-prefixed ("7:archive12;13:artifacts.zip3:zip").
// errPacked: a packed artifacts attribute that packArtifacts did not write.
var errPacked = errors.New("malformed packed artifacts")

func unpackArtifacts(s string) ([]jobs.Artifact, error) {
	var out []jobs.Artifact
	// until cuts s at the next sep and returns what was before it.
	until := func(sep byte) (string, bool) {
		i := strings.IndexByte(s, sep)
		if i < 0 {
			return "", false
		}
		v := s[:i]
		s = s[i+1:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := until(':')
		l, err := strconv.Atoi(n)
		if !ok || err != nil || l < 0 || l > len(s) {
			return "", false
		}
		v := s[:l]
		s = s[l:]
		return v, true
	}
	for s != "" {
		var a jobs.Artifact
		var ok bool
		if a.FileType, ok = str(); !ok {
			return nil, errPacked
		}
		size, ok := until(';')
		if !ok {
			return nil, errPacked
		}
		if size != "-" {
			n, err := strconv.ParseInt(size, 10, 64)
			if err != nil {
				return nil, errPacked
			}
			a.Size = &n
		}
		if a.Filename, ok = str(); !ok {
			return nil, errPacked
		}
		if a.FileFormat, ok = str(); !ok {
			return nil, errPacked
		}
		out = append(out, a)
	}
	return out, nil
}

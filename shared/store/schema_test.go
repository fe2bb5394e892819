package store_test

import (
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"gopkg.in/yaml.v3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
)

// template.yaml declares the table TableSchema defines: same keys, same
// attribute types, same indexes and projections, on-demand billing.
func TestTemplateDeclaresTheSchema(t *testing.T) {
	b, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type keyElem struct {
		AttributeName string `yaml:"AttributeName"`
		KeyType       string `yaml:"KeyType"`
	}
	var doc struct {
		Resources struct {
			JobsTable struct {
				Properties struct {
					BillingMode          string    `yaml:"BillingMode"`
					KeySchema            []keyElem `yaml:"KeySchema"`
					AttributeDefinitions []struct {
						AttributeName string `yaml:"AttributeName"`
						AttributeType string `yaml:"AttributeType"`
					} `yaml:"AttributeDefinitions"`
					GlobalSecondaryIndexes []struct {
						IndexName  string    `yaml:"IndexName"`
						KeySchema  []keyElem `yaml:"KeySchema"`
						Projection struct {
							ProjectionType   string   `yaml:"ProjectionType"`
							NonKeyAttributes []string `yaml:"NonKeyAttributes"`
						} `yaml:"Projection"`
					} `yaml:"GlobalSecondaryIndexes"`
					PointInTimeRecoverySpecification struct {
						PointInTimeRecoveryEnabled bool `yaml:"PointInTimeRecoveryEnabled"`
					} `yaml:"PointInTimeRecoverySpecification"`
				} `yaml:"Properties"`
			} `yaml:"JobsTable"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Resources.JobsTable.Properties
	want := store.TableSchema("any")
	if got.BillingMode != string(want.BillingMode) {
		t.Errorf("billing %q, want %q", got.BillingMode, want.BillingMode)
	}
	if !got.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled {
		t.Error("point-in-time recovery is off")
	}
	keys := func(ks []keyElem) map[string]string {
		m := map[string]string{}
		for _, k := range ks {
			m[k.AttributeName] = k.KeyType
		}
		return m
	}
	wantKeys := map[string]string{}
	for _, k := range want.KeySchema {
		wantKeys[aws.ToString(k.AttributeName)] = string(k.KeyType)
	}
	if !maps.Equal(keys(got.KeySchema), wantKeys) {
		t.Errorf("key schema %v, want %v", got.KeySchema, wantKeys)
	}
	attrs := map[string]string{}
	for _, a := range got.AttributeDefinitions {
		attrs[a.AttributeName] = a.AttributeType
	}
	wantAttrs := map[string]string{}
	for _, a := range want.AttributeDefinitions {
		wantAttrs[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	if !maps.Equal(attrs, wantAttrs) {
		t.Errorf("attributes %v, want %v", attrs, wantAttrs)
	}
	if len(got.GlobalSecondaryIndexes) != len(want.GlobalSecondaryIndexes) {
		t.Fatalf("%d indexes, want %d", len(got.GlobalSecondaryIndexes), len(want.GlobalSecondaryIndexes))
	}
	for i, g := range want.GlobalSecondaryIndexes {
		tg := got.GlobalSecondaryIndexes[i]
		wk := map[string]string{}
		for _, k := range g.KeySchema {
			wk[aws.ToString(k.AttributeName)] = string(k.KeyType)
		}
		if tg.IndexName != aws.ToString(g.IndexName) || !maps.Equal(keys(tg.KeySchema), wk) ||
			tg.Projection.ProjectionType != string(g.Projection.ProjectionType) ||
			!slices.Equal(tg.Projection.NonKeyAttributes, g.Projection.NonKeyAttributes) {
			t.Errorf("index %d: template %+v, want %s %v %s %v", i, tg, aws.ToString(g.IndexName), wk,
				g.Projection.ProjectionType, g.Projection.NonKeyAttributes)
		}
	}
}

package agreement

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/sam"
)

// resourceNames turn the template's ARN expressions into the terms of the
// permissions files. Anything else (a "*", another resource) stays as
// written and so never matches a declaration: it reads as too broad.
var resourceNames = strings.NewReplacer("!Sub ", "",
	"!GetAtt JobsTable.Arn", "table", "${JobsTable.Arn}", "table",
	"!GetAtt ArtifactsBucket.Arn", "bucket", "${ArtifactsBucket.Arn}", "bucket",
)

// Granted reads what the template allows a function, as permissions. Only
// inline Allow statements with Action and Resource can be compared: SAM
// policy templates, managed policies, a Role, NotAction, NotResource or a
// Condition are errors, since what they grant is not in the template — but
// for s3:ListBucket narrowed to key prefixes ({StringLike: {s3:prefix:
// [...]}}), which reads as "bucket?prefix=<pattern>".
func Granted(t *sam.Template, f *sam.Function) ([]Permission, []error) {
	var fn struct {
		Properties struct {
			Role     yaml.Node                `yaml:"Role"`
			Policies []map[string][]yaml.Node `yaml:"Policies"`
		} `yaml:"Properties"`
	}
	res := t.Resources[f.LogicalID]
	if err := res.Decode(&fn); err != nil {
		return nil, []error{fmt.Errorf("%s: Policies must be a list of {Statement: [...]}: %w", f.LogicalID, err)}
	}
	var errs []error
	if !fn.Properties.Role.IsZero() {
		errs = append(errs, fmt.Errorf("%s: a Role hides what the function may do: use inline Policies statements", f.LogicalID))
	}
	for _, policy := range fn.Properties.Policies {
		for key, stmts := range policy {
			if key != "Statement" {
				errs = append(errs, fmt.Errorf("%s: policy %s cannot be checked against the code: write an inline Statement", f.LogicalID, key))
			}
			for _, st := range stmts {
				for i := 0; i+1 < len(st.Content); i += 2 {
					if k := st.Content[i].Value; k != "Effect" && k != "Action" && k != "Resource" && k != "Condition" {
						errs = append(errs, fmt.Errorf("%s: a statement with %s cannot be checked against the code", f.LogicalID, k))
					}
				}
			}
		}
	}
	var out []Permission
	for _, s := range f.Statements {
		if s.Effect != "Allow" {
			errs = append(errs, fmt.Errorf("%s: statement with Effect %q: only Allow statements are expected", f.LogicalID, s.Effect))
			continue
		}
		prefixes, err := listPrefixes(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.LogicalID, err))
			continue
		}
		for _, a := range s.Actions {
			for _, r := range s.Resource {
				r = resourceNames.Replace(r)
				if prefixes == nil {
					out = append(out, Permission{a, r})
				}
				for _, p := range prefixes {
					out = append(out, Permission{a, r + "?prefix=" + p})
				}
			}
		}
	}
	return out, errs
}

// listPrefixes reads the one condition the permissions can say: the key
// prefixes an s3:ListBucket statement may list. nil: no condition.
func listPrefixes(s sam.Statement) ([]string, error) {
	if s.Condition == nil {
		return nil, nil
	}
	like := s.Condition["StringLike"]
	if len(s.Condition) != 1 || len(like) != 1 || len(like["s3:prefix"]) == 0 || !slices.Equal(s.Actions, []string{"s3:ListBucket"}) {
		return nil, fmt.Errorf("a statement with Condition %v cannot be checked against the code (only s3:ListBucket with StringLike s3:prefix)", s.Condition)
	}
	return like["s3:prefix"], nil
}

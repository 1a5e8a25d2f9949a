package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/promflow/promflow/mockexporter"
)

// familyFlags collects the repeatable -family flag: one generated family
// (mockexporter.FamilyTemplate as JSON) a use, declared at boot.
type familyFlags []mockexporter.FamilyTemplate

func (f *familyFlags) String() string { return fmt.Sprintf("%d families", len(*f)) }

func (f *familyFlags) Set(s string) error {
	var ft mockexporter.FamilyTemplate
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ft); err != nil {
		return fmt.Errorf("want a JSON family template such as %s: %w", familyExample, err)
	}
	*f = append(*f, ft)
	return nil
}

const familyExample = `{"name":"app_up","labels":["pod=pod-{0..999}"],"churn":{"share":0.1,"interval":"1m"},"seed":1}`

// addFamilyFlags defines -family on fs; the returned function, called after
// fs.Parse, declares the families in reg (within its budgets).
func addFamilyFlags(fs *flag.FlagSet) func(*mockexporter.Registry) error {
	var fams familyFlags
	fs.Var(&fams, "family", "declare a generated family at boot, a JSON mockexporter.FamilyTemplate (repeatable), e.g. "+familyExample)
	return func(reg *mockexporter.Registry) error {
		for _, ft := range fams {
			if err := reg.DeclareFamily(ft); err != nil {
				return fmt.Errorf("-family %s: %w", ft.Name, err)
			}
		}
		return nil
	}
}

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// schema prints the integration schema to paste into Sentry's internal
// integration form: an alert-rule action whose settings pick a route and
// people to @-mention. Sentry calls the URIs on the webhook URL's host,
// replacing its path, so a relay behind a path prefix passes its webhook URL.
func schema(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.SetOutput(stdout)
	webhookURL := fs.String("webhook-url", "", "the relay's webhook URL as entered in Sentry, when it has a path prefix (https://host/prefix/sentry/webhook)")
	if err := fs.Parse(args); err != nil {
		return errSilent
	}
	prefix := ""
	if *webhookURL != "" {
		u, err := url.Parse(*webhookURL)
		if err != nil || !strings.HasSuffix(u.Path, "/sentry/webhook") {
			return fmt.Errorf("--webhook-url %q does not end in /sentry/webhook", *webhookURL)
		}
		prefix = strings.TrimSuffix(u.Path, "/sentry/webhook")
	}
	doc := map[string]any{
		"elements": []any{map[string]any{
			"type":  "alert-rule-action",
			"title": "Send to DingTalk",
			"settings": map[string]any{
				"type":        "alert-rule-settings",
				"uri":         prefix + "/sentry/alert-rule-action",
				"description": "Choose the DingTalk route (group robots) for this rule and who to @-mention.",
				"required_fields": []any{map[string]any{
					"type": "select", "label": "DingTalk route", "name": "route",
					"uri": prefix + "/sentry/options/routes",
				}},
				"optional_fields": []any{map[string]any{
					"type": "text", "label": "@-mention mobiles (comma-separated; replaces the route's)", "name": "mentions",
				}},
			},
		}},
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

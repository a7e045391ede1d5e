package formatter

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Message is the JSON body of a DingTalk custom robot send request.
type Message struct {
	MsgType    string      `json:"msgtype"`
	Markdown   *Markdown   `json:"markdown,omitempty"`
	ActionCard *ActionCard `json:"actionCard,omitempty"`
	At         *At         `json:"at,omitempty"`
	// MsgUUID makes DingTalk drop a repeated send of the same message.
	MsgUUID string `json:"msgUuid,omitempty"`
}

// Markdown is the markdown message type.
type Markdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// ActionCard is the action card message type: one button (SingleTitle,
// SingleURL) or several (Buttons). It cannot @-mention anyone.
type ActionCard struct {
	Title          string   `json:"title"`
	Text           string   `json:"text"`
	BtnOrientation string   `json:"btnOrientation,omitempty"`
	SingleTitle    string   `json:"singleTitle,omitempty"`
	SingleURL      string   `json:"singleURL,omitempty"`
	Buttons        []Button `json:"btns,omitempty"`
}

// Button is one button of an action card.
type Button struct {
	Title     string `json:"title"`
	ActionURL string `json:"actionURL"`
}

// At lists who a markdown message @-mentions.
type At struct {
	AtMobiles []string `json:"atMobiles,omitempty"`
	AtUserIDs []string `json:"atUserIds,omitempty"`
	IsAtAll   bool     `json:"isAtAll,omitempty"`
}

// Message types.
const (
	TypeMarkdown   = "markdown"
	TypeActionCard = "actionCard"
)

// Size limits of a DingTalk message body.
const (
	// MaxBodyBytes is what DingTalk accepts (errcode 460101 above it).
	MaxBodyBytes = 20000
	// TargetBodyBytes is what the renderer aims for, leaving headroom.
	TargetBodyBytes = 18000
	// uuidReserve is kept free for the msgUuid the dispatcher adds.
	uuidReserve = len(`,"msgUuid":""`) + 64
)

// Title returns the message's title whatever its type.
func (m Message) Title() string {
	switch {
	case m.Markdown != nil:
		return m.Markdown.Title
	case m.ActionCard != nil:
		return m.ActionCard.Title
	}
	return ""
}

// Text returns the message's markdown text whatever its type.
func (m Message) Text() string {
	switch {
	case m.Markdown != nil:
		return m.Markdown.Text
	case m.ActionCard != nil:
		return m.ActionCard.Text
	}
	return ""
}

// JSON encodes m the way it is sent: UTF-8, without HTML escaping (which
// would triple the size of every '<').
func (m Message) JSON() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		// Message has only strings, slices and bools: encoding cannot fail.
		panic("formatter: encode message: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// jsonLen is the number of bytes s takes inside a JSON string encoded
// without HTML escaping, so sizes can be computed without re-encoding.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20:
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

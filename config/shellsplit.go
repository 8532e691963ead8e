package config

import (
	"errors"
	"strings"
)

// shellSplit splits s into words as a POSIX shell does, without expansions, like Python's
// shlex.split (which worker-vllm used): blanks separate words; 'single quotes' keep everything
// literally; "double quotes" keep everything but \" and \\; a backslash outside quotes escapes
// the next character; quotes next to other text join it (a'b'c is abc); empty quotes make an empty word.
// An unbalanced quote or a trailing backslash is an error.
func shellSplit(s string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool // a word is open, even if empty (after '')
	)
	end := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			end()
		case '\\':
			if i+1 == len(s) {
				return nil, errors.New("ends with a lone backslash")
			}
			i++
			word.WriteByte(s[i])
			inWord = true
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unbalanced single quote")
			}
			word.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				word.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("unbalanced double quote")
			}
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	end()
	return words, nil
}

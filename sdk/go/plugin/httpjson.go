package plugin

import (
	"encoding/base64"
	"sort"
	"strconv"
)

// The http hook's request and response are read and written by hand, like
// the score hook's (scorejson.go): encoding/json's reflection made a route
// call inside WebAssembly about twice as dear as the rest of it. The wire
// format is plain JSON; a test checks both paths agree.

// decodeRequest parses the http hook's input into req.
func decodeRequest(b []byte, req *Request) error {
	r := &jreader{b: b}
	err := r.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "method":
			req.Method, err = r.str()
		case "path":
			req.Path, err = r.str()
		case "caller":
			req.Caller, err = r.str()
		case "body":
			if r.null() {
				return nil
			}
			var raw []byte
			if raw, err = r.rawString(); err == nil {
				req.Body, err = base64.StdEncoding.AppendDecode(nil, raw)
			}
		case "headers":
			if r.null() {
				return nil
			}
			req.Headers = map[string]string{}
			err = r.object(func(k []byte) error {
				v, err := r.str()
				req.Headers[string(k)] = v
				return err
			})
		case "query":
			if r.null() {
				return nil
			}
			req.Query = map[string][]string{}
			err = r.object(func(k []byte) error {
				var vs []string
				if r.null() {
					req.Query[string(k)] = nil
					return nil
				}
				err := r.array(func() error {
					v, err := r.str()
					vs = append(vs, v)
					return err
				})
				req.Query[string(k)] = vs
				return err
			})
		default:
			err = r.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	r.ws()
	if r.i != len(r.b) {
		return errSyntax
	}
	return nil
}

// appendResponse writes res as the http hook's output.
func appendResponse(b []byte, res *Response) []byte {
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(res.Status), 10)
	if len(res.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		keys := make([]string, 0, len(res.Headers))
		for k := range res.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, res.Headers[k])
		}
		b = append(b, '}')
	}
	if len(res.Body) > 0 {
		b = append(b, `,"body":"`...)
		b = base64.StdEncoding.AppendEncode(b, res.Body)
		b = append(b, '"')
	}
	return append(b, '}')
}

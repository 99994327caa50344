package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Call deadlines without wazero's loop checks.
//
// wazero enforces a context deadline (WithCloseOnContextDone) by calling a
// trampoline at the head of every loop iteration. Go compiled to
// WebAssembly runs every function as a loop (its resumable dispatch), so
// that call ran on almost every guest function call and made the
// first-party scorers about 1.7× slower (BENCHMARKS.md, "Scoring").
//
// Instead, instrumentLoops rewrites a plugin's code before compilation. It
// adds a mutable i32 global, the budget, and at the head of every loop
//
//	budget -= 1; if budget == 0 { budget = sw_tick() }
//
// a load, a store and a branch. sw_tick, a host function imported under a
// new function index, traps when the call's context is done or past its
// deadline, yields the goroutine (runtime.Gosched), and returns a fresh
// budget. Both parts matter: the deadline is read from the context rather
// than from a timer, because a goroutine spinning in compiled guest code
// cannot be preempted, and Go timers kept on its P would never fire; and the
// yield lets that P run its other goroutines and timers. A runaway call
// therefore ends within tickBudget loop iterations of its deadline (about a
// millisecond), with no per-call timer or goroutine.
//
// The rewrite decodes every instruction. A module using one it does not
// know is compiled unchanged, with wazero's checks (Compile falls back), so
// no module loses its deadline.

// tickImport is the host function the instrumented loops call.
const tickImport = "sw_tick"

// tickBudget is how many loop iterations run between two sw_tick calls.
const tickBudget = 1 << 16

// errUnsupported means the module uses an encoding the rewriter does not
// decode; the caller falls back to wazero's loop checks.
var errUnsupported = errors.New("wasm: instruction not supported by the loop instrumenter")

// Section ids (WebAssembly core spec, binary format).
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionOrder ranks the non-custom sections in the order the spec requires.
var sectionOrder = map[byte]int{secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6,
	secGlobal: 7, secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13}

// rewriter holds what the rewrite of one module needs to know.
type rewriter struct {
	funcImports uint32 // imported functions before the rewrite: sw_tick gets this index
	globals     uint32 // globals before the rewrite: the budget gets this index
	check       []byte // the code put at the head of every loop
}

// shiftFunc maps a function index of the original module to the rewritten
// one, where sw_tick sits after the other imported functions.
func (rw *rewriter) shiftFunc(idx uint32) uint32 {
	if idx >= rw.funcImports {
		return idx + 1
	}
	return idx
}

// instrumentLoops returns code with the budget, the sw_tick import and a
// check at the head of every loop. It returns errUnsupported (wrapped) for a
// module it cannot decode completely, and another error for a malformed one.
func instrumentLoops(code []byte) ([]byte, error) {
	if len(code) < 8 || !bytes.Equal(code[:8], []byte{0, 'a', 's', 'm', 1, 0, 0, 0}) {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", errUnsupported)
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	r := &reader{b: code, pos: 8}
	for r.pos < len(r.b) {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("wasm: malformed section %d: %w", id, r.err)
		}
		if id != secCustom && sectionOrder[id] == 0 {
			return nil, fmt.Errorf("%w: section %d", errUnsupported, id)
		}
		secs = append(secs, section{id, body})
	}

	rw := &rewriter{}
	var types uint32
	for _, s := range secs {
		sr := &reader{b: s.body}
		switch s.id {
		case secType:
			types = sr.u32()
		case secImport:
			funcs, globals, err := countImports(s.body)
			if err != nil {
				return nil, err
			}
			rw.funcImports, rw.globals = funcs, rw.globals+globals
		case secGlobal:
			rw.globals += sr.u32()
		}
		if sr.err != nil {
			return nil, fmt.Errorf("wasm: malformed section %d: %w", s.id, sr.err)
		}
	}
	budget := uleb(rw.globals)
	// budget -= 1; if budget == 0 { budget = sw_tick() }
	rw.check = concat([]byte{0x23}, budget, []byte{0x41, 0x01, 0x6b, 0x24}, budget,
		[]byte{0x23}, budget, []byte{0x45, 0x04, 0x40, 0x10}, uleb(rw.funcImports),
		[]byte{0x24}, budget, []byte{0x0b})
	tickType := []byte{0x60, 0x00, 0x01, 0x7f} // () -> i32
	tickImp := concat(name(UserModule), name(tickImport), []byte{0x00}, uleb(types))
	budgetGlobal := concat([]byte{0x7f, 0x01, 0x41}, sleb(tickBudget), []byte{0x0b}) // mut i32

	var out bytes.Buffer
	out.Write(code[:8])
	emit := func(id byte, body []byte) {
		out.WriteByte(id)
		out.Write(uleb(uint32(len(body))))
		out.Write(body)
	}
	// A module lacking a section the rewrite extends gets one, placed
	// before the first section that must follow it.
	missing := []struct {
		id   byte
		body []byte
	}{
		{secType, concat(uleb(1), tickType)},
		{secImport, concat(uleb(1), tickImp)},
		{secGlobal, concat(uleb(1), budgetGlobal)},
	}
	present := map[byte]bool{}
	for _, s := range secs {
		present[s.id] = true
	}
	for _, s := range secs {
		for _, m := range missing {
			if !present[m.id] && s.id != secCustom && sectionOrder[s.id] > sectionOrder[m.id] {
				emit(m.id, m.body)
				present[m.id] = true
			}
		}
		var body []byte
		var err error
		switch s.id {
		case secCustom:
			// Names and DWARF describe the original indices and offsets.
			sr := &reader{b: s.body}
			nm := string(sr.bytes(int(sr.u32())))
			if sr.err != nil {
				return nil, fmt.Errorf("wasm: malformed custom section: %w", sr.err)
			}
			if nm == "name" || strings.HasPrefix(nm, ".debug") {
				continue
			}
			body = s.body
		case secType:
			body, err = appendToVector(s.body, tickType)
		case secImport:
			body, err = appendToVector(s.body, tickImp)
		case secTable:
			body, err = rw.tables(s.body)
		case secGlobal:
			body, err = rw.globalSection(s.body)
			if err == nil {
				body, err = appendToVector(body, budgetGlobal)
			}
		case secExport:
			body, err = rw.exports(s.body)
		case secStart:
			sr := &reader{b: s.body}
			idx := sr.u32()
			body, err = uleb(rw.shiftFunc(idx)), sr.err
		case secElement:
			body, err = rw.elements(s.body)
		case secCode:
			body, err = rw.code(s.body)
		default:
			body = s.body
		}
		if err != nil {
			if errors.Is(err, errUnsupported) {
				return nil, err
			}
			return nil, fmt.Errorf("wasm: malformed section %d: %w", s.id, err)
		}
		emit(s.id, body)
	}
	for _, m := range missing {
		if !present[m.id] {
			emit(m.id, m.body)
		}
	}
	return out.Bytes(), nil
}

// countImports counts the function and global imports of an import section.
func countImports(body []byte) (funcs, globals uint32, err error) {
	r := &reader{b: body}
	for i, n := uint32(0), r.u32(); i < n && r.err == nil; i++ {
		r.bytes(int(r.u32())) // module
		r.bytes(int(r.u32())) // name
		switch kind := r.byte(); kind {
		case 0x00: // function: type index
			r.u32()
			funcs++
		case 0x01: // table: reftype, limits
			r.valtype()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
		case 0x03: // global: valtype, mutability
			r.valtype()
			r.byte()
			globals++
		case 0x04: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			return 0, 0, fmt.Errorf("%w: import kind 0x%02x", errUnsupported, kind)
		}
	}
	if r.err != nil {
		return 0, 0, fmt.Errorf("wasm: malformed import section: %w", r.err)
	}
	return funcs, globals, nil
}

// appendToVector adds one encoded element to a section that is a vector.
func appendToVector(body, elem []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	return concat(uleb(n+1), body[r.pos:], elem), nil
}

// tables refuses tables with an initialiser expression (a newer encoding).
func (rw *rewriter) tables(body []byte) ([]byte, error) {
	r := &reader{b: body}
	for i, n := uint32(0), r.u32(); i < n && r.err == nil; i++ {
		if r.pos < len(r.b) && r.b[r.pos] == 0x40 {
			return nil, fmt.Errorf("%w: table with an initialiser", errUnsupported)
		}
		r.valtype()
		r.limits()
	}
	return body, r.err
}

// globalSection rewrites the initialisers of the module's globals (a
// ref.func there names a function).
func (rw *rewriter) globalSection(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := uleb(n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.pos
		r.valtype()
		r.byte() // mutability
		out = append(out, r.b[start:r.pos]...)
		var err error
		if out, err = rw.expr(out, r); err != nil {
			return nil, err
		}
	}
	return out, r.err
}

// exports shifts the indices of exported functions.
func (rw *rewriter) exports(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := uleb(n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		nm := r.bytes(int(r.u32()))
		kind := r.byte()
		idx := r.u32()
		if kind == 0x00 {
			idx = rw.shiftFunc(idx)
		}
		out = concat(out, name(string(nm)), []byte{kind}, uleb(idx))
	}
	return out, r.err
}

// elements rewrites the function indices of element segments, in each of
// their eight encodings.
func (rw *rewriter) elements(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := uleb(n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		out = append(out, uleb(flags)...)
		if flags > 7 {
			return nil, fmt.Errorf("%w: element segment flags %d", errUnsupported, flags)
		}
		var err error
		if flags&0x02 != 0 && flags&0x01 == 0 { // explicit table index
			out = append(out, uleb(r.u32())...)
		}
		if flags&0x01 == 0 { // active: offset expression
			if out, err = rw.expr(out, r); err != nil {
				return nil, err
			}
		}
		if flags&0x03 != 0 { // element kind or reference type
			start := r.pos
			r.valtype()
			out = append(out, r.b[start:r.pos]...)
		}
		m := r.u32()
		out = append(out, uleb(m)...)
		for j := uint32(0); j < m && r.err == nil; j++ {
			if flags&0x04 == 0 {
				out = append(out, uleb(rw.shiftFunc(r.u32()))...)
			} else if out, err = rw.expr(out, r); err != nil {
				return nil, err
			}
		}
	}
	return out, r.err
}

// expr copies a constant expression up to and including its end.
func (rw *rewriter) expr(out []byte, r *reader) ([]byte, error) {
	for r.err == nil {
		if r.pos < len(r.b) && r.b[r.pos] == 0x0b {
			r.pos++
			return append(out, 0x0b), nil
		}
		var err error
		if out, err = rw.instruction(out, r, false); err != nil {
			return nil, err
		}
	}
	return nil, r.err
}

// code rewrites every function body of a code section.
func (rw *rewriter) code(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := uleb(n)
	fn := make([]byte, 0, 1024)
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		code := r.bytes(int(size))
		if r.err != nil {
			break
		}
		var err error
		if fn, err = rw.function(fn[:0], code); err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = append(out, uleb(uint32(len(fn)))...)
		out = append(out, fn...)
	}
	return out, r.err
}

// function copies one function body (locals, then instructions) to out.
func (rw *rewriter) function(out, code []byte) ([]byte, error) {
	r := &reader{b: code}
	for i, n := uint32(0), r.u32(); i < n && r.err == nil; i++ {
		r.u32()     // count
		r.valtype() // type
	}
	if r.err != nil {
		return nil, fmt.Errorf("malformed locals: %w", r.err)
	}
	out = append(out, code[:r.pos]...)
	for r.pos < len(r.b) {
		var err error
		if out, err = rw.instruction(out, r, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// instruction copies one instruction, rewritten: function indices shifted,
// and, in code, the check after a loop's block type. It refuses a global
// index at or beyond the budget's: such a module is invalid as written, and
// must not reach what the host adds.
func (rw *rewriter) instruction(out []byte, r *reader, inCode bool) ([]byte, error) {
	start := r.pos
	op := r.byte()
	switch op {
	case 0x03: // loop
		r.blocktype()
		if r.err == nil && inCode {
			return concat(out, r.b[start:r.pos], rw.check), nil
		}
	case 0x10, 0x12, 0xd2: // call, return_call, ref.func
		idx := r.u32()
		if r.err == nil {
			return concat(out, []byte{op}, uleb(rw.shiftFunc(idx))), nil
		}
	case 0x23, 0x24: // global.get, global.set
		if idx := r.u32(); idx >= rw.globals && r.err == nil {
			return nil, fmt.Errorf("global %d does not exist", idx)
		}
	default:
		if err := r.skipImmediates(op); err != nil {
			return nil, err
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("malformed instruction 0x%02x at %d: %w", op, start, r.err)
	}
	return append(out, r.b[start:r.pos]...), nil
}

// skipImmediates reads the immediates of the instruction whose opcode
// (already read) is op.
func (r *reader) skipImmediates(op byte) error {
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f,
		op == 0x19, op == 0x1a, op == 0x1b, op == 0xd1, op == 0xd3, op == 0xd4:
		// no immediates
	case op >= 0x45 && op <= 0xc4: // numeric, including sign extension
	case op == 0x02, op == 0x04, op == 0x06: // block, if, try
		r.blocktype()
	case op == 0x07, op == 0x08: // catch, throw: tag
		r.u32()
	case op == 0x09, op == 0x0c, op == 0x0d, op == 0x18, op == 0xd5, op == 0xd6: // rethrow, br, br_if, delegate, br_on_(non_)null
		r.u32()
	case op == 0x0e: // br_table
		for i, n := uint32(0), r.u32(); i < n && r.err == nil; i++ {
			r.u32()
		}
		r.u32()
	case op == 0x10, op == 0x12, op == 0x14, op == 0x15, op == 0xd2: // call, return_call, call_ref, return_call_ref, ref.func
		r.u32()
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect: type, table
		r.u32()
		r.u32()
	case op == 0x1c: // select with types
		for i, n := uint32(0), r.u32(); i < n && r.err == nil; i++ {
			r.valtype()
		}
	case op == 0x1f: // try_table
		r.blocktype()
		for i, n := uint32(0), r.u32(); i < n && r.err == nil; i++ {
			switch kind := r.byte(); kind {
			case 0x00, 0x01:
				r.u32()
				r.u32()
			case 0x02, 0x03:
				r.u32()
			default:
				return fmt.Errorf("%w: catch kind 0x%02x", errUnsupported, kind)
			}
		}
	case op >= 0x20 && op <= 0x22, op == 0x25, op == 0x26: // locals, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f, op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41:
		r.skipSLEB()
	case op == 0x42:
		r.skipSLEB()
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null
		r.reftype()
	case op == 0xfc:
		return r.skipFC()
	case op == 0xfd:
		return r.skipSIMD()
	case op == 0xfe:
		return r.skipAtomic()
	default:
		return fmt.Errorf("%w: opcode 0x%02x", errUnsupported, op)
	}
	return nil
}

// skipFC reads a 0xFC-prefixed instruction (saturating truncation, bulk
// memory, tables).
func (r *reader) skipFC() error {
	switch sub := r.u32(); {
	case sub <= 7:
	case sub == 8: // memory.init: data, memory
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		r.u32()
	case sub == 10, sub == 12, sub == 14: // memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	default:
		return fmt.Errorf("%w: 0xfc %d", errUnsupported, sub)
	}
	return nil
}

// skipSIMD reads a 0xFD-prefixed (vector) instruction.
func (r *reader) skipSIMD() error {
	switch sub := r.u32(); {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.byte()
	case sub <= 0x113: // everything else, relaxed SIMD included, has no immediates
	default:
		return fmt.Errorf("%w: 0xfd %d", errUnsupported, sub)
	}
	return nil
}

// skipAtomic reads a 0xFE-prefixed (threads) instruction.
func (r *reader) skipAtomic() error {
	switch sub := r.u32(); {
	case sub == 3: // atomic.fence
		r.byte()
	case sub <= 0x4e:
		r.memarg()
	default:
		return fmt.Errorf("%w: 0xfe %d", errUnsupported, sub)
	}
	return nil
}

// reader decodes the binary format; the first error sticks.
type reader struct {
	b   []byte
	pos int
	err error
}

var errTruncated = errors.New("unexpected end")

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b) {
		r.err = errTruncated
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.pos+n > len(r.b) {
		r.err = errTruncated
		return nil
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s
}

func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.pos:min(len(r.b), r.pos+5)])
	if n <= 0 || v > 1<<32-1 {
		r.err = errors.New("bad unsigned LEB128")
		return 0
	}
	r.pos += n
	return uint32(v)
}

// sleb skips a signed LEB128 of up to 64 bits (also s33 block types).
func (r *reader) skipSLEB() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 || r.err != nil {
			return
		}
	}
	r.err = errors.New("bad signed LEB128")
}

// blocktype is 0x40, a value type, or a type index as s33.
func (r *reader) blocktype() {
	if r.err != nil {
		return
	}
	if r.pos < len(r.b) {
		switch c := r.b[r.pos]; {
		case c == 0x40:
			r.pos++
			return
		case c == 0x63 || c == 0x64: // (ref null? heaptype)
			r.pos++
			r.skipSLEB()
			return
		}
	}
	r.skipSLEB()
}

// valtype reads a value type: one byte, or a typed reference.
func (r *reader) valtype() {
	if c := r.byte(); c == 0x63 || c == 0x64 {
		r.skipSLEB() // heap type
	}
}

func (r *reader) reftype() { r.valtype() }

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&0x01 != 0 {
		r.u32()
	}
	if flags&^0x07 != 0 && r.err == nil {
		r.err = fmt.Errorf("%w: limits flags 0x%02x", errUnsupported, flags)
	}
}

// memarg is an alignment (bit 6 set: a memory index follows) and an
// offset (64 bits wide with memory64).
func (r *reader) memarg() {
	if align := r.u32(); align&0x40 != 0 {
		r.u32()
	}
	if r.err != nil {
		return
	}
	if _, n := binary.Uvarint(r.b[r.pos:min(len(r.b), r.pos+10)]); n > 0 {
		r.pos += n
		return
	}
	r.err = errors.New("bad memarg offset")
}

func uleb(v uint32) []byte { return binary.AppendUvarint(nil, uint64(v)) }

// sleb encodes a signed LEB128 (for i32.const).
func sleb(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func name(s string) []byte { return append(uleb(uint32(len(s))), s...) }

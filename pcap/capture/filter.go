package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// optionKindMPTCP is the TCP option kind of every MPTCP option.
const optionKindMPTCP = 30

// Scratch memory slots of the filter.
const (
	memCursor = 0 // absolute offset of the next TCP option
	memEnd    = 1 // absolute offset where the TCP header ends
)

// maxOptionSteps bounds the unrolled walk over the TCP options: classic
// BPF has no backward jumps. 40 bytes of options hold at most 40 options
// (all NOPs).
const maxOptionSteps = 40

// mptcpFilter is a classic BPF program that accepts IPv4 and IPv6 TCP
// segments carrying at least one MPTCP option (kind 30), for frames whose
// network header starts at linkHeader bytes (14 for Ethernet, 0 for raw
// IP). IPv4 fragments after the first and IPv6 extension headers are not
// followed; those packets are dropped.
func mptcpFilter(linkHeader uint32, snaplen uint32) ([]bpf.RawInstruction, error) {
	var p []bpf.Instruction
	// Jump targets are resolved at the end: labels index into p.
	type fix struct {
		at            int
		skipTrue      string
		skipFalse     string
		unconditional string
	}
	var fixes []fix
	labels := map[string]int{}
	emitJump := func(cond bpf.JumpTest, val uint32, ifTrue, ifFalse string) {
		fixes = append(fixes, fix{at: len(p), skipTrue: ifTrue, skipFalse: ifFalse})
		p = append(p, bpf.JumpIf{Cond: cond, Val: val})
	}
	emitJumpX := func(cond bpf.JumpTest, ifTrue, ifFalse string) {
		fixes = append(fixes, fix{at: len(p), skipTrue: ifTrue, skipFalse: ifFalse})
		p = append(p, bpf.JumpIfX{Cond: cond})
	}
	emitGoto := func(to string) {
		fixes = append(fixes, fix{at: len(p), unconditional: to})
		p = append(p, bpf.Jump{})
	}
	label := func(name string) { labels[name] = len(p) }

	if linkHeader > 0 {
		// Ethernet: the EtherType says which IP version follows.
		p = append(p, bpf.LoadAbsolute{Off: 12, Size: 2})
		emitJump(bpf.JumpEqual, 0x0800, "ipv4", "")
		emitJump(bpf.JumpEqual, 0x86dd, "ipv6", "rejhdr")
	} else {
		// Raw IP: the version nibble.
		p = append(p, bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
		emitJump(bpf.JumpEqual, 4, "ipv4", "")
		emitJump(bpf.JumpEqual, 6, "ipv6", "rejhdr")
	}

	label("ipv4")
	p = append(p, bpf.LoadAbsolute{Off: linkHeader + 9, Size: 1})
	emitJump(bpf.JumpEqual, 6, "", "rejhdr")
	// Later fragments have no TCP header.
	p = append(p, bpf.LoadAbsolute{Off: linkHeader + 6, Size: 2})
	emitJump(bpf.JumpBitsSet, 0x1fff, "rejhdr", "")
	// X = IPv4 header length; TCP starts at linkHeader + X.
	p = append(p,
		bpf.LoadMemShift{Off: linkHeader},
		bpf.LoadIndirect{Off: linkHeader + 12, Size: 1}, // data offset nibble
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 4},
		bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: linkHeader},
		bpf.ALUOpX{Op: bpf.ALUOpAdd},
		bpf.StoreScratch{Src: bpf.RegA, N: memEnd},
		bpf.TXA{},
		bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: linkHeader + 20},
		bpf.StoreScratch{Src: bpf.RegA, N: memCursor},
	)
	emitGoto("walk")

	label("ipv6")
	p = append(p, bpf.LoadAbsolute{Off: linkHeader + 6, Size: 1})
	emitJump(bpf.JumpEqual, 6, "", "rejhdr")
	p = append(p,
		bpf.LoadAbsolute{Off: linkHeader + 40 + 12, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 4},
		bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: linkHeader + 40},
		bpf.StoreScratch{Src: bpf.RegA, N: memEnd},
		bpf.LoadConstant{Dst: bpf.RegA, Val: linkHeader + 40 + 20},
		bpf.StoreScratch{Src: bpf.RegA, N: memCursor},
	)

	emitGoto("walk")
	label("rejhdr")
	emitGoto("reject")

	label("walk")
	for i := range maxOptionSteps {
		next := fmt.Sprintf("step%d", i+1)
		nop, acc, rej := fmt.Sprintf("nop%d", i), fmt.Sprintf("acc%d", i), fmt.Sprintf("rej%d", i)
		// cursor < end, else no MPTCP option.
		p = append(p,
			bpf.LoadScratch{Dst: bpf.RegX, N: memEnd},
			bpf.LoadScratch{Dst: bpf.RegA, N: memCursor},
		)
		emitJumpX(bpf.JumpGreaterOrEqual, rej, "")
		p = append(p,
			bpf.TAX{},
			bpf.LoadIndirect{Off: 0, Size: 1}, // kind
		)
		emitJump(bpf.JumpEqual, optionKindMPTCP, acc, "")
		emitJump(bpf.JumpEqual, 0, rej, "") // end of options
		emitJump(bpf.JumpEqual, 1, nop, "")
		p = append(p, bpf.LoadIndirect{Off: 1, Size: 1}) // length
		emitJump(bpf.JumpGreaterOrEqual, 2, "", rej)
		p = append(p,
			bpf.ALUOpX{Op: bpf.ALUOpAdd},
			bpf.StoreScratch{Src: bpf.RegA, N: memCursor},
		)
		emitGoto(next)
		label(nop)
		p = append(p,
			bpf.TXA{},
			bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1},
			bpf.StoreScratch{Src: bpf.RegA, N: memCursor},
		)
		emitGoto(next)
		// Conditional jumps reach 255 instructions at most: far targets
		// go through these.
		label(acc)
		emitGoto("accept")
		label(rej)
		emitGoto("reject")
		label(next)
	}
	emitGoto("reject")

	label("accept")
	p = append(p, bpf.RetConstant{Val: snaplen})
	label("reject")
	p = append(p, bpf.RetConstant{Val: 0})

	for _, f := range fixes {
		target := func(name string) (uint32, error) {
			if name == "" {
				return 0, nil
			}
			to, ok := labels[name]
			if !ok || to <= f.at {
				return 0, fmt.Errorf("bpf filter: bad jump from %d to %q", f.at, name)
			}
			return uint32(to - f.at - 1), nil
		}
		switch ins := p[f.at].(type) {
		case bpf.Jump:
			s, err := target(f.unconditional)
			if err != nil {
				return nil, err
			}
			ins.Skip = s
			p[f.at] = ins
		case bpf.JumpIf:
			t, err := target(f.skipTrue)
			if err != nil {
				return nil, err
			}
			e, err := target(f.skipFalse)
			if err != nil {
				return nil, err
			}
			if t > 255 || e > 255 {
				return nil, fmt.Errorf("bpf filter: jump from %d too far", f.at)
			}
			ins.SkipTrue, ins.SkipFalse = uint8(t), uint8(e)
			p[f.at] = ins
		case bpf.JumpIfX:
			t, err := target(f.skipTrue)
			if err != nil {
				return nil, err
			}
			e, err := target(f.skipFalse)
			if err != nil {
				return nil, err
			}
			if t > 255 || e > 255 {
				return nil, fmt.Errorf("bpf filter: jump from %d too far", f.at)
			}
			ins.SkipTrue, ins.SkipFalse = uint8(t), uint8(e)
			p[f.at] = ins
		}
	}
	return bpf.Assemble(p)
}

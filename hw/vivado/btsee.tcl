# Helpers of btsee's Vivado build. hw/vivado/project.py copies this file into the build folder;
# build.tcl and block_design.tcl source it. Plain Tcl around the Vivado commands they call, so
# tclsh runs them with stub commands in the tests (hw/vivado/test_project.py, tests/test_deploy.py).
# Python twins of the checks: hw/vivado/project.py (log_problems, timing_summary).

# The newest version of an IP in this Vivado's catalog for a VLNV pattern such as
# xilinx.com:ip:axi_dma:*. No version is pinned: a newer Vivado may no longer have it.
proc btsee_vlnv {pattern} {
  set defs [get_ipdefs -all -quiet -filter {DESIGN_TOOL_CONTEXTS =~ *IPI*} $pattern]
  if {[llength $defs] == 0} { set defs [get_ipdefs -all -quiet $pattern] }
  if {[llength $defs] == 0} { error "btsee: no IP matches $pattern in this Vivado's IP catalog" }
  set vlnvs {}
  foreach def $defs { lappend vlnvs [get_property VLNV $def] }
  return [lindex [lsort -dictionary $vlnvs] end]
}

# A block design cell of the newest version of the IP `pattern`.
proc btsee_ip {pattern name} {
  return [create_bd_cell -type ip -vlnv [btsee_vlnv $pattern] $name]
}

# Sets the project's board part when this Vivado has the board's files (folders in the
# environment variable BTSEE_BOARD_REPO are added to the board repositories first); 1 when it
# did, so that the block design applies the board's PS preset, 0 for explicit PS settings.
proc btsee_use_board_part {board_part} {
  if {$board_part eq ""} {
    puts "btsee: no board part for this board: the processing system gets explicit settings"
    return 0
  }
  if {[info exists ::env(BTSEE_BOARD_REPO)] && $::env(BTSEE_BOARD_REPO) ne ""} {
    set repos [split $::env(BTSEE_BOARD_REPO) ":"]
    set_param board.repoPaths [concat [get_param board.repoPaths] $repos]
    set_property BOARD_PART_REPO_PATHS [concat [get_property BOARD_PART_REPO_PATHS [current_project]] $repos] \
      [current_project]
  }
  if {[llength [get_board_parts -quiet $board_part]] == 0} {
    puts "btsee: board part $board_part is not installed in this Vivado (install its board files or set\
      BTSEE_BOARD_REPO to their folder): the processing system gets explicit settings, no board preset"
    return 0
  }
  set_property board_part $board_part [current_project]
  return 1
}

# Stops the build: `line` is printed, written to the gate file ($::btsee_gate_file, which
# run_vivado reads) and raised as the Tcl error.
proc btsee_fail {line} {
  puts $line
  if {[info exists ::btsee_gate_file]} {
    set out [open $::btsee_gate_file a]
    puts $out $line
    close $out
  }
  error $line
}

# "file:line" from a message's trailing [file:line] (Vivado quotes the file on some hosts);
# "" when the message has none.
proc btsee_source_location {text} {
  if {[regexp {\[([^\[\]]+):([0-9]+)\]\s*$} $text -> file line]} {
    return "[string trim $file {"}]:$line"
  }
  return ""
}

# What is wrong with a Vivado message (id: "Synth 8-327", text: after the id) that must stop
# the build: a $readmem file not found, an inferred latch, a multi-driven net; "" if nothing.
proc btsee_problem_kind {id text} {
  set lower [string tolower $text]
  if {[string match *readmem* $lower] && [regexp {could not open|cannot open|can not open|unable to open|not found} $lower]} {
    return "\$readmem data file not found"
  }
  if {$id eq "Synth 8-327" || [string match "*inferring latch*" $lower]} { return "inferred latch" }
  if {$id in {"Synth 8-6859" "Synth 8-6858" "Synth 8-3352" "DRC MDRV-1"}
      || [regexp {multi-driven net|multiple driver} $lower]} {
    return "multi-driven net"
  }
  return ""
}

# One line per problem in the Vivado log `log`: "file:line: kind (id): message", the source
# file and line from the message, else the log's own file and line.
proc btsee_log_problems {log} {
  set problems {}
  set in [open $log r]
  set n 0
  while {[gets $in line] >= 0} {
    incr n
    if {![regexp {^\s*(?:CRITICAL WARNING|WARNING|ERROR):\s*\[([^\]]+)\]\s*(.*)$} $line -> id text]} continue
    set kind [btsee_problem_kind $id $text]
    if {$kind eq ""} continue
    set where [btsee_source_location $text]
    if {$where eq ""} { set where "$log:$n" }
    regsub {\s*\[[^\[\]]+:[0-9]+\]\s*$} $text "" text
    lappend problems "$where: $kind ($id): [string trim $text]"
  }
  close $in
  return $problems
}

# Stops the build after `stage` (synthesis, implementation) when a run's log under `runs`
# (the project's .runs folder) has a problem (btsee_log_problems); names the first problem.
proc btsee_log_gate {stage runs} {
  set problems {}
  foreach log [lsort [glob -nocomplain -directory $runs */runme.log]] {
    foreach problem [btsee_log_problems $log] {
      if {$problem ni $problems} { lappend problems $problem }
    }
  }
  if {[llength $problems] == 0} { return }
  set more [expr {[llength $problems] > 1 ? " (and [expr {[llength $problems] - 1}] more in the run logs)" : ""}]
  btsee_fail "btsee: $stage log gate: [lindex $problems 0]$more"
}

# Stops the build when the run did not complete.
proc btsee_run_gate {run stage} {
  set progress [get_property PROGRESS [get_runs $run]]
  if {$progress ne "100%"} {
    btsee_fail "btsee: $stage failed ($run at $progress): see its runme.log under the project's .runs folder"
  }
}

# {WNS TNS WHS THS} in ns from a report_timing_summary file's Design Timing Summary table;
# {} when the report has no such table.
proc btsee_timing_numbers {report} {
  set in [open $report r]
  set lines [split [read $in] "\n"]
  close $in
  set header [lsearch -regexp $lines {^\s*WNS\(ns\)\s+TNS\(ns\)}]
  if {$header < 0} { return {} }
  foreach row [lrange $lines [expr {$header + 1}] end] {
    set row [string trim $row]
    if {[regexp {^[-\s]*$} $row]} continue  ;# blank, or the header's rule of dashes
    return [list [lindex $row 0] [lindex $row 1] [lindex $row 4] [lindex $row 5]]
  }
  return {}
}

# A slack for the gate's line: three decimals (as the report writes them), NA when unknown.
proc btsee_ns {value} {
  if {[string is double -strict $value]} { return [format %.3f $value] }
  return NA
}

# Writes the timing summary of the open implemented design to `report` (kept) and stops the
# build when the setup (WNS, TNS) or hold (WHS, THS) slack is negative, with one line naming
# the worst path: startpoint -> endpoint and its slack.
proc btsee_timing_gate {run report} {
  report_timing_summary -delay_type min_max -max_paths 10 -file $report
  set numbers [btsee_timing_numbers $report]
  if {[llength $numbers] != 4} {
    set numbers {}
    foreach stat {WNS TNS WHS THS} { lappend numbers [get_property STATS.$stat [get_runs $run]] }
  }
  lassign $numbers wns tns whs ths
  foreach {check worst total names} [list setup $wns $tns {WNS TNS} hold $whs $ths {WHS THS}] {
    set failing 0
    foreach value [list $worst $total] {
      if {[string is double -strict $value] && $value < 0} { set failing 1 }
    }
    if {!$failing} continue
    set path [lindex [get_timing_paths -max_paths 1 -nworst 1 -$check] 0]
    btsee_fail [format "btsee: timing not met (%s): %s %s ns, %s %s ns; worst path %s -> %s, slack %s ns; report %s" \
      $check [lindex $names 0] [btsee_ns $worst] [lindex $names 1] [btsee_ns $total] \
      [get_property STARTPOINT_PIN $path] [get_property ENDPOINT_PIN $path] [btsee_ns [get_property SLACK $path]] $report]
  }
  puts "btsee: timing met: WNS $wns ns, TNS $tns ns, WHS $whs ns, THS $ths ns (report $report)"
}

import Testing
@testable import IPVSAnalysis

from sequencer.service import main

main()

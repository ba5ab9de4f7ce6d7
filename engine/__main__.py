from engine.service import main

main()
